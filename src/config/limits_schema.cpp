// config (internal): `limits:`, `bounds:`, `messages:` and the per-queue fields both forms share.
#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <variant>

#include "config/schema.hpp"

namespace xqw::config::detail {
namespace {

// A value of any limit, as parsed: the alternatives of LimitMember, in its order.
using LimitValue = std::variant<std::int64_t, double, std::chrono::milliseconds, bool, std::string>;

// `value` shown to an operator: the written form, CPUs with their unit.
std::string show_value(const LimitField& field, const LimitValue& value) {
  Limits shown;
  std::visit([&](auto member) { shown.*member = std::get<std::decay_t<decltype(shown.*member)>>(value); },
             field.member);
  return show_limit(shown, field) + (field.kind == LimitKind::Cpus ? " CPUs" : "");
}

std::string above(const std::string& value, const std::string& bound, std::string_view bound_key) {
  return value + " is above the operator's bound of " + bound + " (bounds." + std::string(bound_key) +
         " in xqwatcher.yaml)";
}

// A numeric limit's text parsed as its kind says.
Parsed<LimitValue> parse_number(LimitKind kind, std::string_view raw) {
  const auto widen = [](auto parsed) -> Parsed<LimitValue> {
    if (!parsed) return std::unexpected(std::move(parsed.error()));
    return LimitValue(*parsed);
  };
  switch (kind) {
    case LimitKind::Size:
      return widen(parse_bytes(raw));
    case LimitKind::Count:
      return widen(parse_count(raw));
    case LimitKind::Cpus:
      return widen(parse_cpus(raw));
    case LimitKind::Duration:
      return widen(parse_duration(raw));
    case LimitKind::Flag:
    case LimitKind::Text:
      break;
  }
  return std::unexpected(std::string("not a number"));
}

// Why `value` is below the field's minimum, or nullopt.
std::optional<std::string> below_minimum(const LimitField& field, const LimitValue& value,
                                         const std::string& raw) {
  if (const auto* ms = std::get_if<std::chrono::milliseconds>(&value)) {
    if (ms->count() >= field.minimum) return std::nullopt;
    return field.minimum <= 1
               ? "must be more than 0, got '" + raw + "'"
               : "must be at least " + show_value(field, std::chrono::milliseconds(field.minimum)) +
                     ", got '" + raw + "'";
  }
  if (const auto* number = std::get_if<std::int64_t>(&value); number && *number < field.minimum) {
    return "must be at least " + show_value(field, field.minimum) + ", got '" + raw + "'";
  }
  return std::nullopt;
}

std::optional<std::string> bound_violation(const LimitField& field, const Limits& limits,
                                           const LimitBounds& bounds) {
  if (field.check) return field.check(limits, &bounds);
  return std::visit(
      [&](auto bound_member) -> std::optional<std::string> {
        if constexpr (std::is_same_v<decltype(bound_member), std::monostate>) {
          return std::nullopt;
        } else {
          const auto& bound = bounds.*bound_member;
          if (!bound) return std::nullopt;
          using T = typename std::decay_t<decltype(bound)>::value_type;
          const T value = std::visit(
              [&](auto member) -> T {
                if constexpr (std::is_same_v<std::decay_t<decltype(limits.*member)>, T>)
                  return limits.*member;
                return T{};
              },
              field.member);
          const bool over = [&] {
            if constexpr (std::is_same_v<T, double>) return value > *bound + 1e-9;
            return value > *bound;
          }();
          if (!over) return std::nullopt;
          return above(show_value(field, value), show_value(field, *bound), field.bound_key);
        }
      },
      field.bound);
}

}  // namespace

const std::vector<std::string_view>& limit_field_names() {
  static const std::vector<std::string_view> names = [] {
    std::vector<std::string_view> keys;
    for (const auto& field : limit_fields()) keys.push_back(field.key);
    return keys;
  }();
  return names;
}

const std::vector<std::string_view>& bound_field_names() {
  static const std::vector<std::string_view> names = [] {
    std::vector<std::string_view> keys;
    for (const auto& field : limit_fields()) {
      if (!field.bound_key.empty()) keys.push_back(field.bound_key);
    }
    keys.push_back("files");
    return keys;
  }();
  return names;
}

void read_limit(Reader& reader, const Node& value, const std::string& key, std::string_view name,
                Limits& limits, const LimitBounds* bounds) {
  const auto* field = limit_field(name);
  if (!field) return;
  std::optional<LimitValue> parsed;
  if (field->kind == LimitKind::Flag) {
    if (const auto flag = reader.boolean(value, key)) parsed = *flag;
  } else if (field->kind == LimitKind::Text) {
    if (auto text = reader.text(value, key)) parsed = std::move(*text);
  } else if (const auto raw = reader.scalar_text(value, key)) {
    auto number = parse_number(field->kind, *raw);
    if (!number) return reader.error(value, key, number.error());
    if (const auto problem = below_minimum(*field, *number, *raw)) return reader.error(value, key, *problem);
    parsed = std::move(*number);
  }
  if (!parsed) return;
  Limits candidate = limits;
  std::visit(
      [&](auto member) { candidate.*member = std::get<std::decay_t<decltype(candidate.*member)>>(*parsed); },
      field->member);
  if (field->check) {
    // The value's own rule (user: never root), whatever the bounds.
    if (const auto problem = field->check(candidate, nullptr)) return reader.error(value, key, *problem);
  }
  limits = std::move(candidate);
  if (bounds) {
    if (const auto violation = bound_violation(*field, limits, *bounds)) reader.error(value, key, *violation);
  }
}

void read_limits(Reader& reader, const Node& map, const std::string& key, Limits& limits,
                 const LimitBounds* bounds) {
  if (!reader.expect(map, Node::Kind::Map, key)) return;
  reader.reject_unknown_keys(map, key, limit_field_names());
  for (const auto& [name, value] : map.entries) {
    if (!limit_field(name)) continue;
    read_limit(reader, value, join_key(key, name), name, limits, bounds);
  }
}

void read_bounds(Reader& reader, const Node& map, const std::string& key, LimitBounds& bounds) {
  if (!reader.expect(map, Node::Kind::Map, key)) return;
  reader.reject_unknown_keys(map, key, bound_field_names());
  for (const auto& [name, value] : map.entries) {
    const std::string field_key = join_key(key, name);
    if (name == "network") {
      if (const auto flag = reader.boolean(value, field_key)) bounds.network_allowed = *flag;
    } else if (name == "files") {
      read_file_bounds(reader, value, field_key, bounds);
    } else if (name == "runtimes") {
      if (!reader.expect(value, Node::Kind::List, field_key)) continue;
      for (std::size_t i = 0; i < value.items.size(); ++i) {
        if (const auto runtime = reader.text(value.items[i], index_key(field_key, i))) {
          bounds.allowed_runtimes.push_back(*runtime);
        }
      }
    } else if (const auto* field = limit_field(name);
               field && !std::holds_alternative<std::monostate>(field->bound)) {
      const auto raw = reader.scalar_text(value, field_key);
      if (!raw) continue;
      auto parsed = parse_number(field->kind, *raw);
      if (!parsed) {
        reader.error(value, field_key, parsed.error());
        continue;
      }
      std::visit(
          [&](auto bound_member) {
            if constexpr (!std::is_same_v<decltype(bound_member), std::monostate>) {
              using T = typename std::decay_t<decltype(bounds.*bound_member)>::value_type;
              bounds.*bound_member = std::get<T>(*parsed);
            }
          },
          field->bound);
    }
  }
}

void check_limits_within_bounds(Reader& reader, const Node& at, const std::string& key, const Limits& limits,
                                const LimitBounds& bounds) {
  for (const auto& field : limit_fields()) {
    if (const auto violation = bound_violation(field, limits, bounds)) {
      reader.error(at, join_key(key, field.key), *violation);
    }
  }
}

void read_messages(Reader& reader, const Node& map, const std::string& key,
                   std::map<std::string, std::string>& messages) {
  if (!reader.expect(map, Node::Kind::Map, key)) return;
  const std::vector<std::string_view> verdicts(kMessageVerdicts.begin(), kMessageVerdicts.end());
  for (const auto& [verdict, value] : map.entries) {
    const std::string verdict_key = join_key(key, verdict);
    if (std::find(verdicts.begin(), verdicts.end(), verdict) == verdicts.end()) {
      std::string reason = "unknown verdict";
      if (const auto suggestion = closest(verdict, verdicts); !suggestion.empty()) {
        reason += " (did you mean '" + suggestion + "'?)";
      }
      reason += "; messages can be set for";
      for (std::size_t i = 0; i < verdicts.size(); ++i)
        reason += (i == 0 ? " " : ", ") + std::string(verdicts[i]);
      reader.error(value, verdict_key, reason);
      continue;
    }
    const auto text = reader.text(value, verdict_key);
    if (!text) continue;
    // Only {limit} is substituted; any other {word} would reach students verbatim.
    for (std::size_t open = text->find('{'); open != std::string::npos; open = text->find('{', open + 1)) {
      const auto close = text->find('}', open);
      const std::string placeholder = text->substr(open, close == std::string::npos ? 1 : close - open + 1);
      if (placeholder != "{limit}") {
        reader.error(value, verdict_key,
                     "unknown placeholder '" + placeholder + "' (only {limit} is replaced)");
        break;
      }
    }
    messages[verdict] = *text;
  }
}

std::optional<std::filesystem::path> read_grader_root(Reader& reader, const Node& node,
                                                      const std::string& key) {
  auto root = reader.path(node, key);
  if (!root) return std::nullopt;
  std::error_code ec;
  if (!std::filesystem::exists(*root, ec)) {
    reader.error(node, key, root->string() + " does not exist");
    return std::nullopt;
  }
  if (!std::filesystem::is_directory(*root, ec)) {
    reader.error(node, key, root->string() + " is not a directory");
    return std::nullopt;
  }
  const auto canonical = std::filesystem::canonical(*root, ec);
  return ec ? *root : canonical;
}

std::optional<std::filesystem::path> read_host_path(Reader& reader, const Node& node,
                                                    const std::string& key) {
  const auto text = reader.text(node, key);
  if (!text) return std::nullopt;
  const std::filesystem::path path(*text);
  if (!path.is_absolute()) {
    reader.error(node, key, "'" + *text + "' must be an absolute path on the engine's host");
    return std::nullopt;
  }
  return path.lexically_normal();
}

std::optional<std::string> read_image(Reader& reader, const Node& node, const std::string& key) {
  auto image = reader.text(node, key);
  if (!image) return std::nullopt;
  if (image->empty() ||
      std::any_of(image->begin(), image->end(), [](unsigned char c) { return std::isspace(c); })) {
    reader.error(node, key,
                 "'" + *image + "' is not an image reference (e.g. xqueue-watcher/python-grader:latest)");
    return std::nullopt;
  }
  return image;
}

std::optional<docker::PullPolicy> read_pull_policy(Reader& reader, const Node& node, const std::string& key) {
  const auto text = reader.text(node, key);
  if (!text) return std::nullopt;
  const auto policy = docker::parse_pull_policy(*text);
  if (!policy)
    reader.error(node, key, "unknown pull policy '" + *text + "' (use never, if-not-present or always)");
  return policy;
}

std::optional<Precreate> read_precreate(Reader& reader, const Node& node, const std::string& key) {
  if (node.kind == Node::Kind::Bool || node.kind == Node::Kind::Plain || node.kind == Node::Kind::String) {
    std::string value = node.text;
    std::transform(value.begin(), value.end(), value.begin(),
                   [](unsigned char c) { return std::tolower(c); });
    if (value == "true" || value == "yes" || value == "on" || value == "started") return Precreate::Started;
    if (value == "created") return Precreate::Created;
    if (value == "false" || value == "no" || value == "off") return Precreate::Off;
  }
  const std::string got = node.is_scalar() ? "'" + node.text + "'" : "a " + std::string(describe(node.kind));
  reader.error(node, key, "expected started (or true), created, or false (or off), got " + got);
  return std::nullopt;
}

namespace {
// One of `names` (case-insensitive) as its index; an error naming the choices otherwise.
template <typename Enum, std::size_t N>
std::optional<Enum> read_choice(Reader& reader, const Node& node, const std::string& key,
                                const std::array<std::pair<std::string_view, Enum>, N>& names) {
  auto text = reader.text(node, key);
  if (!text) return std::nullopt;
  std::transform(text->begin(), text->end(), text->begin(), [](unsigned char c) { return std::tolower(c); });
  std::string expected;
  for (const auto& [name, value] : names) {
    if (*text == name) return value;
    expected += (expected.empty() ? "" : ", ") + std::string(name);
  }
  reader.error(node, key, "expected one of " + expected + ", got '" + node.text + "'");
  return std::nullopt;
}
}  // namespace

std::optional<ServerApi> read_server_api(Reader& reader, const Node& node, const std::string& key) {
  return read_choice<ServerApi, 2>(reader, node, key,
                                   {{{"xqueue", ServerApi::XQueue}, {"lms", ServerApi::Lms}}});
}

std::optional<PointsRounding> read_points_rounding(Reader& reader, const Node& node, const std::string& key) {
  return read_choice<PointsRounding, 3>(
      reader, node, key,
      {{{"nearest", PointsRounding::Nearest}, {"down", PointsRounding::Down}, {"up", PointsRounding::Up}}});
}

std::optional<ContractKind> read_contract(Reader& reader, const Node& node, const std::string& key) {
  const auto text = reader.text(node, key);
  if (!text) return std::nullopt;
  for (const auto kind : {ContractKind::Native, ContractKind::Upstream}) {
    if (*text == contract_name(kind)) return kind;
  }
  std::string reason = "unknown contract '" + *text + "' (use native or upstream)";
  if (const auto suggestion = closest(*text, {"native", "upstream"}); !suggestion.empty()) {
    reason = "unknown contract '" + *text + "' (did you mean '" + suggestion + "'?)";
  }
  reader.error(node, key, reason);
  return std::nullopt;
}

std::optional<std::string> read_url(Reader& reader, const Node& node, const std::string& key) {
  auto url = reader.text(node, key);
  if (!url) return std::nullopt;
  if (url->rfind("http://", 0) != 0 && url->rfind("https://", 0) != 0) {
    reader.error(node, key, "'" + *url + "' is not an http:// or https:// URL");
    return std::nullopt;
  }
  while (url->size() > 8 && url->back() == '/') url->pop_back();
  return url;
}

bool check_queue_name(Reader& reader, const Node& at, const std::string& key, const std::string& name) {
  if (name.empty()) {
    reader.error(at, key, "the queue name is empty");
    return false;
  }
  if (std::any_of(name.begin(), name.end(),
                  [](unsigned char c) { return std::iscntrl(c) || std::isspace(c); })) {
    reader.error(at, key, "queue name '" + name + "' contains spaces or control characters");
    return false;
  }
  return true;
}

QueueDraft new_queue_draft(Reader& reader, const Node& map, const std::string& key, const std::string& name,
                           std::string_view rename_key, const ManagerConfig& manager) {
  QueueDraft draft;
  draft.key = key;
  draft.line = map.line;
  QueueConfig& queue = draft.queue;
  queue.source = reader.file().string();
  queue.name = name;
  queue.image = manager.default_image;
  queue.pull_policy = manager.default_pull_policy;
  queue.limits = manager.default_limits;
  queue.messages = manager.default_messages;
  queue.files = manager.default_files;
  queue.docker_host_grader_root = manager.default_docker_host_grader_root;
  if (const Node* rename = map.find(std::string(rename_key))) {
    const std::string rename_path = join_key(key, std::string(rename_key));
    if (auto value = reader.text(*rename, rename_path)) queue.name = *value;
    check_queue_name(reader, *rename, rename_path, queue.name);
  } else {
    check_queue_name(reader, map, key, queue.name);
  }
  return draft;
}

}  // namespace xqw::config::detail

namespace xqw::config {

std::string_view contract_name(ContractKind contract) {
  return contract == ContractKind::Upstream ? "upstream" : "native";
}

bool is_python_grader_image(std::string_view reference) {
  reference = reference.substr(0, reference.find('@'));  // digest
  const auto last_slash = reference.rfind('/');
  const auto tag = reference.rfind(':');
  if (tag != std::string_view::npos && (last_slash == std::string_view::npos || tag > last_slash)) {
    reference = reference.substr(0, tag);
  }
  constexpr std::string_view kRepository = "xqueue-watcher/python-grader";
  // Any registry or namespace in front ("ghcr.io/org/xqueue-watcher/python-grader"), never a longer name.
  return reference == kRepository ||
         (reference.ends_with(kRepository) && reference[reference.size() - kRepository.size() - 1] == '/');
}

std::string_view precreate_name(Precreate precreate) {
  switch (precreate) {
    case Precreate::Off:
      return "off";
    case Precreate::Created:
      return "created";
    case Precreate::Started:
      return "started";
  }
  return "?";
}

}  // namespace xqw::config
