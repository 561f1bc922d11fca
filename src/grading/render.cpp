#include "grading/render.hpp"

#include <functional>
#include <initializer_list>
#include <optional>
#include <string_view>
#include <utility>

#include "grading/html_allowlist.hpp"
#include "grading/utf8_text.hpp"

namespace xqw::grading {
namespace {

// The markup below mirrors the Python watcher's templates byte for byte, so course CSS keeps working.
constexpr std::string_view kResultsTemplate = R"(
<div class="test">
<header>Test results</header>
  <section>
    <div class="shortform">
    {status}
    </div>
    <div class="longform">
      {errors}
      {results}
    </div>
  </section>
</div>
)";

constexpr std::string_view kCorrectTestTemplate = R"(
  <div class="result-output result-correct">
    <h4>{short-description}</h4>
    <pre>{long-description}</pre>
    <dl>
    <dt>Output:</dt>
    <dd class="result-actual-output">
       <pre>{actual-output}</pre>
       </dd>
    </dl>
  </div>
)";

constexpr std::string_view kIncorrectTestTemplate = R"(
  <div class="result-output result-incorrect">
    <h4>{short-description}</h4>
    <pre>{long-description}</pre>
    <dl>
    <dt>Your output:</dt>
    <dd class="result-actual-output"><pre>{actual-output}</pre></dd>
    <dt>Correct output:</dt>
    <dd><pre>{expected-output}</pre></dd>
    </dl>
  </div>
)";

constexpr std::string_view kTruncatedNote = R"(
  <div class="result-output result-truncated">
    <p>[output truncated]</p>
  </div>
)";

constexpr std::string_view kErrorsOpen = "<div class=\"result-errors\"><ul>\n";
constexpr std::string_view kErrorsClose = "</ul>\n</div>";

// A field squeezed below this to fit the message would say nothing useful; leave its block out instead.
constexpr std::size_t kMinSqueezedField = 128;

using Substitutions = std::initializer_list<std::pair<std::string_view, std::string_view>>;

// Replaces each {name} in one pass, so braces inside substituted text are never expanded again.
std::string fill(std::string_view text, Substitutions substitutions) {
  std::string out;
  out.reserve(text.size());
  std::size_t i = 0;
  while (i < text.size()) {
    bool replaced = false;
    if (text[i] == '{') {
      for (const auto& [name, value] : substitutions) {
        if (text.substr(i + 1).starts_with(name) && text.substr(i + 1 + name.size()).starts_with('}')) {
          out += value;
          i += name.size() + 2;
          replaced = true;
          break;
        }
      }
    }
    if (!replaced) out += text[i++];
  }
  return out;
}

std::string escaped_field(std::string_view text, std::size_t cap) {
  return truncate_escaped(html_escape(text), cap);
}

std::string render_test(const TestResult& test, std::size_t field_cap) {
  // Like upstream, an empty long description shows no paragraph.
  const std::string long_description =
      test.long_description.empty() ? "" : "<p>" + escaped_field(test.long_description, field_cap) + "</p>";
  const std::string short_description = escaped_field(test.short_description, field_cap);
  const std::string actual = escaped_field(test.actual_output, field_cap);
  if (test.correct) {
    return fill(kCorrectTestTemplate, {{"short-description", short_description},
                                       {"long-description", long_description},
                                       {"actual-output", actual}});
  }
  const std::string expected = escaped_field(test.expected_output, field_cap);
  return fill(kIncorrectTestTemplate, {{"short-description", short_description},
                                       {"long-description", long_description},
                                       {"actual-output", actual},
                                       {"expected-output", expected}});
}

std::string render_error_item(std::string_view error, bool first, std::size_t field_cap) {
  return std::string(first ? "" : "\n") + "<li><pre>" + escaped_field(error, field_cap) + "</pre></li>\n";
}

// Bytes still free in the message. The first fragment that does not fit is squeezed (its fields cut
// further) if that leaves something worth showing; either way nothing after it is added.
class Budget {
 public:
  explicit Budget(std::size_t bytes) : remaining_(bytes) {}

  bool truncated() const { return truncated_; }

  bool reserve(std::size_t bytes) {
    if (truncated_ || bytes > remaining_) {
      truncated_ = true;
      return false;
    }
    remaining_ -= bytes;
    return true;
  }

  // render(cap) draws the fragment with every field capped at cap bytes; it has field_count fields.
  std::optional<std::string> place(const std::function<std::string(std::size_t)>& render,
                                   std::size_t field_cap, std::size_t field_count) {
    if (truncated_) return std::nullopt;
    std::string fragment = render(field_cap);
    if (reserve(fragment.size())) return fragment;
    const std::size_t overhead = render(0).size();
    if (overhead >= remaining_) return std::nullopt;
    const std::size_t squeezed_cap = (remaining_ - overhead) / field_count;
    if (squeezed_cap < kMinSqueezedField) return std::nullopt;
    fragment = render(squeezed_cap);
    if (fragment.size() > remaining_) return std::nullopt;
    remaining_ -= fragment.size();
    return fragment;
  }

 private:
  std::size_t remaining_;
  bool truncated_ = false;
};

std::string render_errors(const std::vector<std::string>& errors, std::size_t field_cap, Budget& budget) {
  if (errors.empty() || !budget.reserve(kErrorsOpen.size() + kErrorsClose.size())) return "";
  std::string items;
  for (std::size_t i = 0; i < errors.size(); ++i) {
    auto item = budget.place([&](std::size_t cap) { return render_error_item(errors[i], i == 0, cap); },
                             field_cap, 1);
    if (!item) break;
    items += *item;
  }
  return std::string(kErrorsOpen) + items + std::string(kErrorsClose);
}

std::string render_tests(const std::vector<TestResult>& tests, std::size_t field_cap, Budget& budget) {
  std::string blocks;
  for (const TestResult& test : tests) {
    auto block = budget.place([&](std::size_t cap) { return render_test(test, cap); }, field_cap, 4);
    if (!block) break;
    blocks += *block;
  }
  return blocks;
}

std::string render_upstream(const GraderResult& result, const RenderLimits& limits) {
  const std::string_view status = !result.errors.empty() ? "ERROR" : result.correct ? "CORRECT" : "INCORRECT";
  const std::size_t frame =
      fill(kResultsTemplate, {{"status", status}, {"errors", ""}, {"results", ""}}).size() +
      kTruncatedNote.size();
  Budget budget(limits.html_bytes > frame ? limits.html_bytes - frame : 0);
  const std::string errors = render_errors(result.errors, limits.field_bytes, budget);
  std::string tests = render_tests(result.tests, limits.field_bytes, budget);
  if (budget.truncated()) tests += kTruncatedNote;
  return fill(kResultsTemplate, {{"status", status}, {"errors", errors}, {"results", tests}});
}

}  // namespace

std::string render_html(const GraderResult& result, const RenderLimits& limits) {
  if (result.html_msg) return sanitize_html(*result.html_msg, limits.html_bytes);
  return render_upstream(result, limits);
}

}  // namespace xqw::grading
