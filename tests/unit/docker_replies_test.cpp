// Every engine reply is checked for its shape before use: each endpoint's parser, and the client over a
// scripted transport, turn a wrong-shaped reply into an EngineError naming the endpoint, never a JSON error.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "docker/docker.hpp"

namespace xqw::docker {
namespace {

using ::testing::HasSubstr;
using namespace std::chrono_literals;

// The error `run` throws: an EngineError (anything else fails the test, a JSON error included).
template <typename Run>
std::string engine_error_of(Run&& run, EngineErrorKind expected_kind = EngineErrorKind::BadReply) {
  try {
    run();
  } catch (const EngineError& error) {
    EXPECT_EQ(error.kind(), expected_kind) << error.what();
    return error.what();
  } catch (const std::exception& error) {
    ADD_FAILURE() << "not an EngineError: " << error.what();
    return "";
  }
  ADD_FAILURE() << "nothing thrown";
  return "";
}

// Wrong shapes every JSON reply must survive: not JSON, empty, an array or a scalar for an object.
const std::vector<std::string> kNotAnObject = {"",       "not json", "{\"Id\":", "[]", "[{\"Id\":\"c1\"}]",
                                               "\"c1\"", "42",       "null"};

// ---- the pure parsers ----------------------------------------------------------------------------------

TEST(EngineReplies, ReadTheDocumentedShapes) {
  EXPECT_EQ(parse_create_reply(R"({"Id":"c1","Warnings":[]})", "img"), "c1");
  EXPECT_EQ(parse_wait_reply(R"({"StatusCode":137,"Error":null})", "c1"), 137);
  const auto state = parse_inspect_reply(
      R"({"State":{"Status":"exited","Running":false,"OOMKilled":true,"ExitCode":137}})", "c1");
  EXPECT_EQ(state.status, "exited");
  EXPECT_FALSE(state.running);
  EXPECT_TRUE(state.oom_killed);
  EXPECT_EQ(state.exit_code, 137);
  const auto image = parse_image_reply(
      R"({"Id":"sha256:ab","Config":{"User":"grader","Labels":{"org.xqw.contract":"native"}}})", "img");
  EXPECT_EQ(image.id, "sha256:ab");
  EXPECT_EQ(image.user, "grader");
  EXPECT_EQ(image.labels.at("org.xqw.contract"), "native");
  const auto list = parse_container_list(
      R"([{"Id":"a","State":"running","Labels":{"k":"v"}},{"Id":"b","State":"exited","Labels":null}])", "k");
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0].id, "a");
  EXPECT_EQ(list[0].labels.at("k"), "v");
  EXPECT_EQ(list[1].state, "exited");
  EXPECT_TRUE(list[1].labels.empty());
  EXPECT_NO_THROW(check_pull_progress("{\"status\":\"Pulling\"}\r\n\r\n{\"status\":\"Done\"}\r\n", "img"));
  EXPECT_EQ(parse_error_message(R"({"message":"No such container: c1"})"), "No such container: c1");
}

TEST(EngineReplies, FieldsTheEngineMayLeaveOutTakeTheirDefaults) {
  const auto state =
      parse_inspect_reply(R"({"State":{"Status":"exited","OOMKilled":false,"ExitCode":0}})", "c1");
  EXPECT_FALSE(state.running);
  EXPECT_EQ(parse_inspect_reply(R"({"State":{}})", "c1").status, "");
  const auto image = parse_image_reply(R"({"Id":"sha256:ab","Config":{"User":"","Labels":null}})", "img");
  EXPECT_TRUE(image.labels.empty());
  EXPECT_EQ(parse_image_reply(R"({"Id":"sha256:ab","Config":null})", "img").user, "");
  EXPECT_EQ(parse_container_list(R"([{"Id":"a"}])", "k").at(0).state, "");
  EXPECT_TRUE(parse_container_list("[]", "k").empty());
}

struct BadReply {
  std::string endpoint;  // what the message must name
  std::function<void(std::string_view)> parse;
  std::vector<std::string> bodies;    // wrong shapes besides kNotAnObject
  std::vector<std::string> problems;  // what the message says for each of `bodies`
};

std::vector<BadReply> bad_replies() {
  return {
      {"create container from img",
       [](std::string_view body) { parse_create_reply(body, "img"); },
       {"{}", R"({"Id":42})", R"({"Id":""})", R"({"Id":null})"},
       {"Id is missing", "Id is an integer, expected a string", "Id is empty", "Id is missing"}},
      {"wait for container c1",
       [](std::string_view body) { parse_wait_reply(body, "c1"); },
       {"{}", R"({"StatusCode":"0"})", R"({"StatusCode":1.5})", R"({"StatusCode":99999999999})"},
       {"StatusCode is missing", "StatusCode is a string, expected an integer",
        "StatusCode is a number with a fraction, expected an integer",
        "StatusCode is 99999999999, out of range"}},
      {"inspect container c1",
       [](std::string_view body) { parse_inspect_reply(body, "c1"); },
       {"{}", R"({"State":"exited"})", R"({"State":{"OOMKilled":"false"}})", R"({"State":{"Running":1}})",
        R"({"State":{"ExitCode":"137"}})", R"({"State":{"Status":0}})"},
       {"State is missing", "State is a string, expected an object",
        "State.OOMKilled is a string, expected a boolean", "State.Running is an integer, expected a boolean",
        "State.ExitCode is a string, expected an integer", "State.Status is an integer, expected a string"}},
      {"inspect image img",
       [](std::string_view body) { parse_image_reply(body, "img"); },
       {R"({"Id":7})", R"({"Config":[]})", R"({"Config":{"User":0}})", R"({"Config":{"Labels":["a"]}})",
        R"({"Config":{"Labels":{"a":1}}})"},
       {"Id is an integer, expected a string", "Config is an array, expected an object",
        "Config.User is an integer, expected a string",
        "Config.Labels is an array, expected an object of strings",
        "Config.Labels.a is an integer, expected a string"}},
      {"list containers labelled k",
       [](std::string_view body) { parse_container_list(body, "k"); },
       {"{}", R"([1])", R"([{"State":"running"}])", R"([{"Id":"a"},{"Id":5}])",
        R"([{"Id":"a","Labels":"x"}])", R"([{"Id":"a","State":false}])"},
       {"the reply is an object, expected a JSON array", "[0] is an integer, expected an object",
        "[0].Id is missing", "[1].Id is an integer, expected a string",
        "[0].Labels is a string, expected an object of strings",
        "[0].State is a boolean, expected a string"}},
      {"pull image img",
       [](std::string_view body) { check_pull_progress(body, "img"); },
       {"{\"status\":\"ok\"}\nnot json\n", "[1]", "\"text\""},
       {"progress line 2 is not JSON", "progress line 1 is an array", "progress line 1 is a string"}},
  };
}

TEST(EngineReplies, EveryWrongShapeIsABadReplyNamingTheEndpoint) {
  for (const auto& endpoint : bad_replies()) {
    SCOPED_TRACE(endpoint.endpoint);
    if (endpoint.endpoint !=
        "pull image img") {  // a progress stream: one object per line, blank lines skipped
      for (const auto& body : kNotAnObject) {
        if (endpoint.endpoint.starts_with("list") && body.starts_with("["))
          continue;  // a list is right there
        SCOPED_TRACE("body: " + body);
        EXPECT_THAT(engine_error_of([&] { endpoint.parse(body); }),
                    HasSubstr(endpoint.endpoint + ": the reply is "));
      }
    }
    ASSERT_EQ(endpoint.bodies.size(), endpoint.problems.size());
    for (std::size_t i = 0; i < endpoint.bodies.size(); ++i) {
      SCOPED_TRACE("body: " + endpoint.bodies[i]);
      const auto message = engine_error_of([&] { endpoint.parse(endpoint.bodies[i]); });
      EXPECT_THAT(message, HasSubstr(endpoint.endpoint + ": "));
      EXPECT_THAT(message, HasSubstr(endpoint.problems[i]));
    }
  }
}

TEST(EngineReplies, VersionStaysLenientAboutFieldsButNotAboutTheReply) {
  for (const auto& body : kNotAnObject) {
    EXPECT_THAT(engine_error_of([&] { parse_version(body, std::nullopt); }), HasSubstr("version: "));
  }
}

TEST(EngineReplies, APullErrorInTheProgressStreamIsAMissingImage) {
  EXPECT_THAT(
      engine_error_of(
          [] { check_pull_progress("{\"status\":\"x\"}\n{\"error\":\"manifest unknown\"}\n", "img"); },
          EngineErrorKind::ImageMissing),
      HasSubstr("image img is not available: pull failed: \"manifest unknown\""));
}

TEST(EngineReplies, AnErrorReplyOfAnyShapeGivesItsText) {
  EXPECT_EQ(parse_error_message("[1,2]"), "[1,2]");
  EXPECT_EQ(parse_error_message(R"({"message":7})"), R"({"message":7})");
  EXPECT_EQ(parse_error_message("<html>bad gateway</html>"), "<html>bad gateway</html>");
  EXPECT_EQ(parse_error_message(std::string(600, 'x')).size(), 500u);
}

std::string frame(int stream, std::string_view payload) {
  std::string out(8, '\0');
  out[0] = static_cast<char>(stream);
  out[7] = static_cast<char>(payload.size());
  return out + std::string(payload);
}

TEST(EngineReplies, AStreamThatIsNotMultiplexedIsRefusedNotMisread) {
  StreamDemuxer demuxer({.stdout_bytes = 100, .stderr_bytes = 100});
  EXPECT_TRUE(demuxer.feed(frame(1, "ok")));
  EXPECT_FALSE(demuxer.feed("Traceback (most recent call last):\n"));  // a TTY's raw bytes
  EXPECT_FALSE(demuxer.feed(frame(1, "more")));
  const auto output = demuxer.take();
  ASSERT_FALSE(output.has_value());
  EXPECT_THAT(output.error(), HasSubstr("not a multiplexed stream (a frame header starts 54 72 61 63"));

  StreamDemuxer good({.stdout_bytes = 100, .stderr_bytes = 100});
  good.feed(frame(1, "a") + frame(2, "b"));
  const auto captured = good.take();
  ASSERT_TRUE(captured.has_value());
  EXPECT_EQ(captured->out.data, "a");
  EXPECT_EQ(captured->err.data, "b");
}

// ---- the client over a scripted transport ----------------------------------------------------------------

// Answers every request with the one reply set for it; records what was asked.
class OneReplyEngine final : public http::Transport {
 public:
  http::Response reply;
  std::vector<std::string> calls;

  http::Response perform(const http::Request& request) override {
    calls.push_back(request.method + " " +
                    request.url.substr(request.url.find(kApiVersion) + kApiVersion.size()));
    return reply;
  }
  http::Response perform_streaming(const http::Request& request, const http::BodySink& sink) override {
    auto response = perform(request);
    if (!response.body.empty()) sink(response.body);
    response.body.clear();
    return response;
  }
  std::optional<std::string> cookie(std::string_view) const override { return std::nullopt; }
  void clear_cookies() override {}
};

class ClientReplies : public ::testing::Test {
 protected:
  void answer(long status, std::string body) { engine_->reply = {.status = status, .body = std::move(body)}; }

  std::unique_ptr<OneReplyEngine> owned_ = std::make_unique<OneReplyEngine>();
  OneReplyEngine* engine_ = owned_.get();
  Client client_{std::move(owned_), "/fake.sock"};
};

struct Call {
  std::string endpoint;  // what the message must name
  long status;           // the success status the endpoint reads a body for
  std::function<void(Client&)> run;
};

std::vector<Call> body_reading_calls() {
  const auto far = std::chrono::steady_clock::now() + 60s;
  return {
      {"version", 200, [](Client& c) { c.version(); }},
      {"inspect image img", 200, [](Client& c) { c.inspect_image("img"); }},
      {"inspect image img", 200, [](Client& c) { c.ensure_image("img", PullPolicy::IfNotPresent, ""); }},
      {"create container from img", 201,
       [](Client& c) { c.create_container(ContainerSpec{.image = "img"}); }},
      {"wait for container c1", 200, [far](Client& c) { c.wait("c1", far); }},
      {"inspect container c1", 200, [](Client& c) { c.inspect("c1"); }},
      {"list containers labelled k=v", 200, [](Client& c) { c.list_by_label("k=v"); }},
      {"list containers labelled k=v", 200, [](Client& c) { c.remove_by_label("k=v"); }},
  };
}

TEST_F(ClientReplies, EveryEndpointRefusesAWrongShapedReplyNamingItself) {
  for (const auto& call : body_reading_calls()) {
    SCOPED_TRACE(call.endpoint);
    for (const auto& body : {std::string("not json"), std::string("[\"c1\"]"),
                             std::string("{\"Id\":[],\"State\":7}"), std::string("7")}) {
      if (call.endpoint.starts_with("list") && body.starts_with("[")) continue;
      if (call.endpoint == "version" && body.starts_with("{")) continue;  // its fields are optional (below)
      SCOPED_TRACE("body: " + body);
      answer(call.status, body);
      EXPECT_THAT(engine_error_of([&] { call.run(client_); }), HasSubstr(call.endpoint + ": "));
    }
  }
}

TEST_F(ClientReplies, APullWithABrokenProgressStreamNamesThePull) {
  answer(200, "{\"status\":\"Pulling\"}\n<html>proxy error</html>\n");
  EXPECT_THAT(engine_error_of([&] { client_.pull_image("img:1"); }),
              HasSubstr("pull image img:1: progress line 2"));
}

TEST_F(ClientReplies, LogsThatAreNotAMultiplexedStreamNameTheContainer) {
  answer(200, "plain text, as a TTY container would print it\n");
  bool deadline_hit = true;
  EXPECT_THAT(engine_error_of([&] {
                client_.follow_output("c1", {}, std::chrono::steady_clock::now() + 60s, &deadline_hit);
              }),
              HasSubstr("logs of container c1: the output is not a multiplexed stream"));
}

// Endpoints that read no body on success still read the engine's error body: whatever its shape, the error
// names the endpoint and carries the engine's status, never a JSON error.
TEST_F(ClientReplies, ErrorRepliesOfAnyShapeNameTheEndpoint) {
  const std::vector<std::pair<std::string, std::function<void(Client&)>>> calls = {
      {"ping", [](Client& c) { c.ping(); }},
      {"version", [](Client& c) { c.version(); }},
      {"inspect image img", [](Client& c) { c.inspect_image("img"); }},
      {"create container from img", [](Client& c) { c.create_container(ContainerSpec{.image = "img"}); }},
      {"start container c1", [](Client& c) { c.start("c1"); }},
      {"wait for container c1", [](Client& c) { c.wait("c1", std::chrono::steady_clock::now() + 60s); }},
      {"signal TERM to container c1", [](Client& c) { c.send_signal("c1", "TERM"); }},
      {"signal KILL to container c1", [](Client& c) { c.kill("c1"); }},
      {"inspect container c1", [](Client& c) { c.inspect("c1"); }},
      {"remove container c1", [](Client& c) { c.remove("c1"); }},
      {"list containers labelled k", [](Client& c) { c.list_by_label("k"); }},
      {"logs of container c1",
       [](Client& c) { c.follow_output("c1", {}, std::chrono::steady_clock::now() + 60s, nullptr); }},
  };
  for (const auto& [endpoint, run] : calls) {
    SCOPED_TRACE(endpoint);
    for (const auto& body : {std::string("[1,2]"), std::string("not json"), std::string("{\"message\":7}")}) {
      answer(500, body);
      const auto message = engine_error_of([&] { run(client_); }, EngineErrorKind::ApiError);
      // The logs stream its body to the demultiplexer, so that error has no engine message to quote.
      EXPECT_THAT(message, HasSubstr(endpoint +
                                     ": engine answered 500: " + (endpoint.starts_with("logs") ? "" : body)));
    }
  }
}

// ---- kinds
// -------------------------------------------------------------------------------------------------

TEST(EngineErrorKinds, EverySubtypeSaysWhichItIs) {
  EXPECT_EQ(EngineUnreachable("x").kind(), EngineErrorKind::Unreachable);
  EXPECT_EQ(EngineTimeout("x").kind(), EngineErrorKind::Timeout);
  EXPECT_EQ(ImageMissing("img", "x").kind(), EngineErrorKind::ImageMissing);
  EXPECT_EQ(ContainerGone("x").kind(), EngineErrorKind::ContainerGone);
  EXPECT_EQ(EngineApiError("x", 500, "boom").kind(), EngineErrorKind::ApiError);
  EXPECT_EQ(EngineBadReply("x").kind(), EngineErrorKind::BadReply);
  EXPECT_EQ(to_string(EngineErrorKind::ContainerGone), "container_gone");
  EXPECT_EQ(to_string(EngineErrorKind::BadReply), "bad_reply");
}

TEST(EngineErrorKinds, TransportFailuresAreUnreachableOrTimeouts) {
  class Failing final : public http::Transport {
   public:
    explicit Failing(bool timed_out) : timed_out_(timed_out) {}
    http::Response perform(const http::Request&) override { throw http::TransportError("no", timed_out_); }
    http::Response perform_streaming(const http::Request& r, const http::BodySink&) override {
      return perform(r);
    }
    std::optional<std::string> cookie(std::string_view) const override { return std::nullopt; }
    void clear_cookies() override {}

   private:
    bool timed_out_;
  };
  Client refused(std::make_unique<Failing>(false), "/fake.sock");
  engine_error_of([&] { refused.ping(); }, EngineErrorKind::Unreachable);
  Client slow(std::make_unique<Failing>(true), "/fake.sock");
  engine_error_of([&] { slow.ping(); }, EngineErrorKind::Timeout);
}

}  // namespace
}  // namespace xqw::docker
