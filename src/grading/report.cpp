#include "grading/report.hpp"

#include "grading/render.hpp"

namespace xqw::grading {

GradeReport refusal_report(Outcome outcome) {
  GradeReport report{.outcome = std::move(outcome)};
  report.html = render_html(report.outcome.result);
  return report;
}

}  // namespace xqw::grading
