#include "grading/report.hpp"

#include "grading/render.hpp"

namespace xqw::grading {

std::string_view to_string(JobDelivery delivery) {
  switch (delivery) {
    case JobDelivery::None:
      return "none";
    case JobDelivery::Fifo:
      return "fifo";
    case JobDelivery::Signal:
      return "signal";
    case JobDelivery::JobFile:
      return "job-file";
  }
  return "none";
}

GradeReport refusal_report(Outcome outcome) {
  GradeReport report{.outcome = std::move(outcome)};
  report.html = render_html(report.outcome.result);
  return report;
}

}  // namespace xqw::grading
