// The observability HTTP server over real sockets: /metrics, /healthz, /readyz fetched with libcurl.
#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <optional>

#include "http/http.hpp"
#include "observability/server.hpp"

namespace xqw::observability {
namespace {

using namespace std::chrono_literals;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;

// The server's read time-out is 5 s: a reply held up by an idle client, or a stop waiting on one, takes
// that long. Half of it tells the two apart with room for a busy machine.
constexpr auto kWellUnderReadTimeout = 2500ms;

struct FakeClock {
  std::chrono::steady_clock::time_point now{std::chrono::hours(1000)};
};

class ObservabilityServerTest : public ::testing::Test {
 protected:
  http::Response get(const std::string& path, const std::string& method = "GET") {
    http::Request request;
    request.method = method;
    request.url = "http://127.0.0.1:" + std::to_string(server_->port()) + path;
    return transport_->perform(request);
  }
  void make_ready() {
    health_.set_config_loaded(true);
    health_.set_xqueue_logged_in("py#0", true);
    health_.set_engine_answering(true);
  }

  FakeClock clock_;
  Metrics metrics_{"7.8.9"};
  Health health_{[this] { return clock_.now; }};
  std::optional<ObservabilityServer> server_{std::in_place, ServerOptions{"127.0.0.1", 0}, metrics_, health_};
  std::unique_ptr<http::Transport> transport_ = http::make_curl_transport({});
};

TEST_F(ObservabilityServerTest, PortZeroPicksAFreePortAndReportsIt) {
  EXPECT_GT(server_->port(), 0);
  EXPECT_EQ(server_->address(), "127.0.0.1");
}

TEST_F(ObservabilityServerTest, MetricsArePrometheusTextWithTheRecordedValues) {
  metrics_.declare_queue("py");
  metrics_.submission_pulled("py");
  metrics_.submission_graded("py", "graded", 1200ms);
  metrics_.set_engine_up(true);
  auto response = get("/metrics");
  EXPECT_EQ(response.status, 200);
  EXPECT_THAT(response.header("Content-Type").value_or(""), StartsWith("text/plain; version=0.0.4"));
  EXPECT_THAT(response.body, HasSubstr("# TYPE xqueue_watcher_submissions_pulled_total counter\n"));
  EXPECT_THAT(response.body, HasSubstr("xqueue_watcher_submissions_pulled_total{queue=\"py\"} 1\n"));
  EXPECT_THAT(response.body,
              HasSubstr("xqueue_watcher_submissions_graded_total{queue=\"py\",verdict=\"graded\"} 1\n"));
  EXPECT_THAT(response.body, HasSubstr("xqueue_watcher_grading_duration_seconds_count{queue=\"py\"} 1\n"));
  EXPECT_THAT(response.body, HasSubstr("xqueue_watcher_engine_up 1\n"));
  EXPECT_THAT(response.body, HasSubstr("xqueue_watcher_build_info{version=\"7.8.9\"} 1\n"));

  metrics_.submission_pulled("py");  // every scrape reads the live registry
  EXPECT_THAT(get("/metrics").body, HasSubstr("xqueue_watcher_submissions_pulled_total{queue=\"py\"} 2\n"));
}

TEST_F(ObservabilityServerTest, ReadyzTurnsFrom503To200AsConditionsAreMet) {
  auto before = get("/readyz");
  EXPECT_EQ(before.status, 503);
  EXPECT_THAT(before.header("Content-Type").value_or(""), StartsWith("application/json"));
  auto body = nlohmann::json::parse(before.body);
  EXPECT_EQ(body["ready"], false);
  EXPECT_EQ(body["reasons"].size(), 3u);

  health_.set_config_loaded(true);
  health_.set_xqueue_logged_in("py#0", true);
  body = nlohmann::json::parse(get("/readyz").body);
  EXPECT_EQ(body["reasons"], nlohmann::json({"Docker engine not answering"}));

  health_.set_engine_answering(true);
  auto after = get("/readyz");
  EXPECT_EQ(after.status, 200);
  EXPECT_EQ(nlohmann::json::parse(after.body),
            nlohmann::json({{"ready", true}, {"reasons", nlohmann::json::array()}}));

  health_.set_shutting_down();
  EXPECT_EQ(get("/readyz").status, 503);
}

TEST_F(ObservabilityServerTest, HealthzFailsWhileALoopIsStuck) {
  make_ready();
  health_.register_loop("worker py#0", 30s);
  auto alive = get("/healthz");
  EXPECT_EQ(alive.status, 200);
  EXPECT_EQ(nlohmann::json::parse(alive.body)["alive"], true);

  clock_.now += 45s;
  auto stuck = get("/healthz");
  EXPECT_EQ(stuck.status, 503);
  auto body = nlohmann::json::parse(stuck.body);
  EXPECT_EQ(body["alive"], false);
  ASSERT_EQ(body["reasons"].size(), 1u);
  EXPECT_THAT(body["reasons"][0].get<std::string>(), HasSubstr("worker py#0"));
  EXPECT_EQ(get("/readyz").status, 200);  // liveness and readiness are separate questions

  health_.heartbeat("worker py#0");
  EXPECT_EQ(get("/healthz").status, 200);
}

TEST_F(ObservabilityServerTest, ServesNothingElse) {
  EXPECT_EQ(get("/").status, 404);
  EXPECT_EQ(get("/metrics/extra").status, 404);
  EXPECT_EQ(get("/debug").status, 404);
  EXPECT_NE(get("/metrics", "POST").status, 200);
}

TEST_F(ObservabilityServerTest, AnIdleConnectionDoesNotDelayProbes) {
  make_ready();
  // A client that connects and never sends a request holds one handler thread until the read time-out.
  int idle = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(idle, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(server_->port()));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(connect(idle, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
  const auto started = std::chrono::steady_clock::now();
  EXPECT_EQ(get("/readyz").status, 200);
  EXPECT_LT(std::chrono::steady_clock::now() - started, kWellUnderReadTimeout);
  close(idle);
}

TEST_F(ObservabilityServerTest, ABusyPortIsAnErrorNamingTheAddress) {
  try {
    ObservabilityServer second(ServerOptions{"127.0.0.1", server_->port()}, metrics_, health_);
    FAIL() << "a second server bound the same port";
  } catch (const ServerError& error) {
    EXPECT_THAT(error.what(), HasSubstr("127.0.0.1:" + std::to_string(server_->port())));
  }
}

TEST_F(ObservabilityServerTest, StopsListeningWhenDestroyed) {
  const int port = server_->port();
  ASSERT_EQ(get("/healthz").status, 200);
  const auto started = std::chrono::steady_clock::now();
  server_.reset();
  EXPECT_LT(std::chrono::steady_clock::now() - started, kWellUnderReadTimeout);
  auto fresh = http::make_curl_transport({});
  http::Request request;
  request.url = "http://127.0.0.1:" + std::to_string(port) + "/healthz";
  EXPECT_THROW(fresh->perform(request), http::TransportError);
}

}  // namespace
}  // namespace xqw::observability
