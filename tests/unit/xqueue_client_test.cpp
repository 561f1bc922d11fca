// XQueue client against a scripted fake transport: URLs, CSRF login, re-login once, put_result bodies,
// errors.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <deque>
#include <map>
#include <string>
#include <vector>

#include "xqueue/xqueue.hpp"

namespace xqw::xqueue {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;
using ::testing::Not;

// One scripted server answer, served in order; it may set cookies (as the cookie engine would) or fail.
struct Step {
  http::Response response;
  std::map<std::string, std::string> set_cookies;
  std::optional<http::TransportError> error;
};

Step reply(const json& body, long status = 200) { return {{status, body.dump(), {}}, {}, std::nullopt}; }
Step status_only(long status) { return {{status, "", {{"Location", "/xqueue/login/"}}}, {}, std::nullopt}; }
Step raw(long status, std::string body) { return {{status, std::move(body), {}}, {}, std::nullopt}; }
Step transport_failure(bool timed_out) {
  return {{}, {}, http::TransportError("GET http://xq/: Timeout was reached", timed_out)};
}
Step with_cookie(Step step, std::string name, std::string value) {
  step.set_cookies[std::move(name)] = std::move(value);
  return step;
}

class FakeTransport final : public http::Transport {
 public:
  explicit FakeTransport(std::vector<Step> script) : script_(script.begin(), script.end()) {}

  http::Response perform(const http::Request& request) override {
    requests.push_back(request);
    if (script_.empty()) {
      ADD_FAILURE() << "unscripted request: " << request.method << " " << request.url;
      throw http::TransportError("fake transport: no scripted reply", false);
    }
    Step step = std::move(script_.front());
    script_.pop_front();
    for (auto& [name, value] : step.set_cookies) cookies_[name] = value;
    if (step.error) throw *step.error;
    return step.response;
  }
  http::Response perform_streaming(const http::Request& request, const http::BodySink& sink) override {
    http::Response response = perform(request);
    sink(response.body);
    response.body.clear();
    return response;
  }
  std::optional<std::string> cookie(std::string_view name) const override {
    const auto it = cookies_.find(std::string(name));
    if (it == cookies_.end()) return std::nullopt;
    return it->second;
  }
  void clear_cookies() override { cookies_.clear(); }

  bool script_done() const { return script_.empty(); }
  int count(std::string_view method, std::string_view url) const {
    int n = 0;
    for (const auto& request : requests) n += request.method == method && request.url == url;
    return n;
  }

  std::vector<http::Request> requests;

 private:
  std::deque<Step> script_;
  std::map<std::string, std::string> cookies_;
};

std::optional<std::string> header(const http::Request& request, std::string_view name) {
  for (const auto& [key, value] : request.headers) {
    if (key == name) return value;
  }
  return std::nullopt;
}

// Decodes application/x-www-form-urlencoded independently of http::form_encode.
std::map<std::string, std::string> form_fields(std::string_view body) {
  auto decode = [](std::string_view text) {
    std::string out;
    for (size_t i = 0; i < text.size(); ++i) {
      if (text[i] == '%' && i + 2 < text.size()) {
        out.push_back(static_cast<char>(std::stoi(std::string(text.substr(i + 1, 2)), nullptr, 16)));
        i += 2;
      } else {
        out.push_back(text[i] == '+' ? ' ' : text[i]);
      }
    }
    return out;
  };
  std::map<std::string, std::string> fields;
  size_t start = 0;
  while (start <= body.size()) {
    size_t end = body.find('&', start);
    if (end == std::string_view::npos) end = body.size();
    const auto pair = body.substr(start, end - start);
    const auto eq = pair.find('=');
    if (eq != std::string_view::npos) fields[decode(pair.substr(0, eq))] = decode(pair.substr(eq + 1));
    start = end + 1;
  }
  return fields;
}

const std::string kBase = "https://xq.example.org";
const std::string kLoginUrl = kBase + "/xqueue/login/";
const std::string kHeader = R"({"submission_id": 42, "submission_key": "5f1e0c0ffee"})";

ClientOptions options() { return {kBase, "lms", "p&ss word", GraderPayloadPolicy::RequireJson}; }

// The two login requests when the server sets no CSRF cookie.
std::vector<Step> login_steps() {
  return {reply({{"return_code", 1}, {"content", "login_required"}}),
          reply({{"return_code", 0}, {"content", "Logged in"}})};
}

std::vector<Step> concat(std::vector<std::vector<Step>> parts) {
  std::vector<Step> all;
  for (auto& part : parts) all.insert(all.end(), part.begin(), part.end());
  return all;
}

Step submission_step() {
  const json body = {{"student_info", "{}"},
                     {"grader_payload", R"({"grader": "hello/grade.py"})"},
                     {"student_response", "print('hi')"}};
  const json content = {{"xqueue_header", kHeader}, {"xqueue_body", body.dump()}, {"xqueue_files", ""}};
  return reply({{"return_code", 0}, {"content", content.dump()}});
}

// ---- URLs -----------------------------------------------------------------------------------------------

TEST(XQueueClientUrls, JoinBaseWithOrWithoutTrailingSlash) {
  FakeTransport transport({});
  for (const std::string base : {"http://xq:18040", "http://xq:18040/", "http://xq:18040//"}) {
    Client client(transport, {base, "u", "p"});
    EXPECT_EQ(client.login_url(), "http://xq:18040/xqueue/login/") << base;
    EXPECT_EQ(client.put_result_url(), "http://xq:18040/xqueue/put_result/") << base;
    EXPECT_EQ(client.get_submission_url("q1"), "http://xq:18040/xqueue/get_submission/?queue_name=q1")
        << base;
    EXPECT_EQ(client.get_queuelen_url("q1"), "http://xq:18040/xqueue/get_queuelen/?queue_name=q1") << base;
  }
  Client prefixed(transport, {"https://host/edx/", "u", "p"});
  EXPECT_EQ(prefixed.login_url(), "https://host/edx/xqueue/login/");
}

TEST(XQueueClientUrls, EscapeQueueNames) {
  FakeTransport transport({});
  Client client(transport, options());
  EXPECT_EQ(client.get_submission_url("MITx 6.00x/ps&1=é"),
            kBase + "/xqueue/get_submission/?queue_name=MITx%206.00x%2Fps%261%3D%C3%A9");
  EXPECT_EQ(client.get_queuelen_url("a+b"), kBase + "/xqueue/get_queuelen/?queue_name=a%2Bb");
}

TEST(XQueueClientUrls, EmptyBaseUrlIsRejected) {
  FakeTransport transport({});
  EXPECT_THROW(Client(transport, {"/", "u", "p"}), std::invalid_argument);
}

// ---- login ----------------------------------------------------------------------------------------------

TEST(XQueueClientLogin, SendsCsrfTokenAndRefererWhenTheServerSetsOne) {
  FakeTransport transport(
      {with_cookie(reply({{"return_code", 1}, {"content", "login_required"}}), "csrftoken", "tok123"),
       reply({{"return_code", 0}, {"content", "Logged in"}})});
  Client client(transport, options());
  client.login();
  EXPECT_TRUE(client.logged_in());

  ASSERT_EQ(transport.requests.size(), 2u);
  EXPECT_EQ(transport.requests[0].method, "GET");
  EXPECT_EQ(transport.requests[0].url, kLoginUrl);
  const auto& post = transport.requests[1];
  EXPECT_EQ(post.method, "POST");
  EXPECT_EQ(post.url, kLoginUrl);
  EXPECT_EQ(header(post, "X-CSRFToken"), "tok123");
  EXPECT_EQ(header(post, "Referer"), kLoginUrl);
  EXPECT_EQ(header(post, "Content-Type"), "application/x-www-form-urlencoded");
  EXPECT_EQ(form_fields(post.body),
            (std::map<std::string, std::string>{{"username", "lms"}, {"password", "p&ss word"}}));
}

TEST(XQueueClientLogin, OmitsCsrfHeadersWithoutTheCookie) {
  FakeTransport transport(login_steps());
  Client client(transport, options());
  client.login();
  ASSERT_EQ(transport.requests.size(), 2u);
  EXPECT_FALSE(header(transport.requests[1], "X-CSRFToken"));
  EXPECT_FALSE(header(transport.requests[1], "Referer"));
  EXPECT_EQ(header(transport.requests[1], "Content-Type"), "application/x-www-form-urlencoded");
}

TEST(XQueueClientLogin, RefusalCarriesTheServersReasonButNotThePassword) {
  FakeTransport transport({reply({{"return_code", 1}, {"content", "login_required"}}),
                           reply({{"return_code", 1}, {"content", "Incorrect login credentials"}})});
  Client client(transport, options());
  try {
    client.login();
    FAIL() << "expected XQueueAuthError";
  } catch (const XQueueAuthError& error) {
    EXPECT_THAT(error.what(), HasSubstr("Incorrect login credentials"));
    EXPECT_THAT(error.what(), HasSubstr(kLoginUrl));
    EXPECT_THAT(error.what(), HasSubstr("'lms'"));
    EXPECT_THAT(error.what(), Not(HasSubstr("p&ss")));
  }
  EXPECT_FALSE(client.logged_in());
}

TEST(XQueueClientLogin, ForbiddenPostIsAnAuthErrorAndServerErrorIsNot) {
  FakeTransport forbidden(
      {reply({{"return_code", 1}, {"content", "login_required"}}), raw(403, "CSRF verification failed")});
  Client client(forbidden, options());
  EXPECT_THROW(client.login(), XQueueAuthError);

  FakeTransport broken({reply({{"return_code", 1}, {"content", "login_required"}}), raw(502, "Bad Gateway")});
  Client other(broken, options());
  try {
    other.login();
    FAIL() << "expected XQueueServerError";
  } catch (const XQueueServerError& error) {
    EXPECT_EQ(error.status(), 502);
  }
}

TEST(XQueueClientLogin, NoUsernameMeansNoLoginRequests) {
  FakeTransport transport({reply({{"return_code", 0}, {"content", 3}})});
  Client client(transport, {kBase, "", ""});
  EXPECT_EQ(client.get_queuelen("q"), 3);
  ASSERT_EQ(transport.requests.size(), 1u);
  EXPECT_EQ(transport.requests[0].url, kBase + "/xqueue/get_queuelen/?queue_name=q");
}

// ---- get_submission and the re-login policy --------------------------------------------------------------

TEST(XQueueClientGetSubmission, LogsInLazilyThenPulls) {
  FakeTransport transport(concat({login_steps(), {submission_step()}}));
  Client client(transport, options());
  EXPECT_FALSE(client.logged_in());
  const auto submission = client.get_submission("py-queue");
  ASSERT_TRUE(submission.has_value());
  EXPECT_EQ(submission->submission_id, 42);
  EXPECT_EQ(submission->raw_header, kHeader);
  EXPECT_EQ(submission->grader_payload.at("grader"), "hello/grade.py");
  ASSERT_EQ(transport.requests.size(), 3u);
  EXPECT_EQ(transport.requests[2].method, "GET");
  EXPECT_EQ(transport.requests[2].url, kBase + "/xqueue/get_submission/?queue_name=py-queue");
  EXPECT_TRUE(client.logged_in());
}

TEST(XQueueClientGetSubmission, EmptyQueueIsNullopt) {
  FakeTransport transport(
      concat({login_steps(), {reply({{"return_code", 1}, {"content", "Queue 'q' is empty"}})}}));
  Client client(transport, options());
  EXPECT_FALSE(client.get_submission("q").has_value());
  EXPECT_TRUE(transport.script_done());
}

TEST(XQueueClientGetSubmission, UnknownQueueIsRejected) {
  FakeTransport transport(
      concat({login_steps(), {reply({{"return_code", 1}, {"content", "Queue 'q' not found"}})}}));
  Client client(transport, options());
  try {
    client.get_submission("q");
    FAIL() << "expected XQueueRejected";
  } catch (const XQueueRejected& error) {
    EXPECT_EQ(error.reason(), "Queue 'q' not found");
  }
}

class XQueueClientRelogin : public ::testing::TestWithParam<long> {};

TEST_P(XQueueClientRelogin, LogsInAgainOnceThenSucceeds) {
  FakeTransport transport(
      concat({login_steps(), {status_only(GetParam())}, login_steps(), {submission_step()}}));
  Client client(transport, options());
  const auto submission = client.get_submission("py-queue");
  ASSERT_TRUE(submission.has_value());
  EXPECT_EQ(submission->submission_id, 42);
  EXPECT_EQ(transport.count("POST", kLoginUrl), 2);
  EXPECT_EQ(transport.count("GET", kBase + "/xqueue/get_submission/?queue_name=py-queue"), 2);
  EXPECT_TRUE(transport.script_done());
  EXPECT_TRUE(client.logged_in());
}

TEST_P(XQueueClientRelogin, StillUnauthenticatedAfterOneReloginIsAnAuthError) {
  FakeTransport transport(
      concat({login_steps(), {status_only(GetParam())}, login_steps(), {status_only(GetParam())}}));
  Client client(transport, options());
  try {
    client.get_submission("py-queue");
    FAIL() << "expected XQueueAuthError";
  } catch (const XQueueAuthError& error) {
    EXPECT_THAT(error.what(), HasSubstr("still not logged in"));
    EXPECT_THAT(error.what(), HasSubstr(std::to_string(GetParam())));
  }
  EXPECT_EQ(transport.count("POST", kLoginUrl), 2);  // no login storm
  EXPECT_EQ(transport.requests.size(), 6u);
  EXPECT_TRUE(transport.script_done());
  EXPECT_FALSE(client.logged_in());
}

INSTANTIATE_TEST_SUITE_P(XQueueAuthStatuses, XQueueClientRelogin, ::testing::Values(301L, 302L, 401L, 403L));

TEST(XQueueClientGetSubmission, FollowedRedirectToLoginPageAlsoTriggersRelogin) {
  // With follow_redirects on, @login_required's 302 ends at the login view: 200 {"content":
  // "login_required"}.
  FakeTransport transport(concat({login_steps(),
                                  {reply({{"return_code", 1}, {"content", "login_required"}})},
                                  login_steps(),
                                  {submission_step()}}));
  Client client(transport, options());
  EXPECT_TRUE(client.get_submission("py-queue").has_value());
  EXPECT_EQ(transport.count("POST", kLoginUrl), 2);
}

TEST(XQueueClientGetSubmission, NoUsernameAndUnauthenticatedFailsWithoutRetrying) {
  FakeTransport transport({status_only(302)});
  Client client(transport, {kBase, "", ""});
  EXPECT_THROW(client.get_submission("q"), XQueueAuthError);
  EXPECT_EQ(transport.requests.size(), 1u);
}

TEST(XQueueClientGetSubmission, MalformedSubmissionIsTypedAndCarriesTheId) {
  const json content = {{"xqueue_header", kHeader}, {"xqueue_body", "{broken"}, {"xqueue_files", ""}};
  FakeTransport transport(
      concat({login_steps(), {reply({{"return_code", 0}, {"content", content.dump()}})}}));
  Client client(transport, options());
  try {
    client.get_submission("py-queue");
    FAIL() << "expected MalformedReply";
  } catch (const MalformedReply& error) {
    EXPECT_EQ(error.submission_id(), 42);
    EXPECT_EQ(error.raw_header(), kHeader);
    EXPECT_THAT(error.what(), HasSubstr(kBase + "/xqueue/get_submission/"));
  }
  EXPECT_TRUE(client.logged_in());  // the session is fine; only this submission is bad
}

TEST(XQueueClientGetSubmission, NonJsonReplyIsMalformed) {
  FakeTransport transport(concat({login_steps(), {raw(200, "<html>maintenance</html>")}}));
  Client client(transport, options());
  EXPECT_THROW(client.get_submission("q"), MalformedReply);
}

TEST(XQueueClientGetSubmission, AllowTextPolicyKeepsPlainPayload) {
  const json body = {{"grader_payload", "hello/grade.py"}, {"student_response", "x"}};
  const json content = {{"xqueue_header", kHeader}, {"xqueue_body", body.dump()}};
  FakeTransport transport(
      concat({login_steps(), {reply({{"return_code", 0}, {"content", content.dump()}})}}));
  ClientOptions text_options = options();
  text_options.grader_payload = GraderPayloadPolicy::AllowText;
  Client client(transport, text_options);
  const auto submission = client.get_submission("q");
  ASSERT_TRUE(submission.has_value());
  EXPECT_FALSE(submission->grader_payload_is_json);
  EXPECT_EQ(submission->grader_payload, "hello/grade.py");
}

// ---- transport and server errors -------------------------------------------------------------------------

TEST(XQueueClientErrors, TransportFailureIsUnreachableAndKeepsTimedOut) {
  for (const bool timed_out : {true, false}) {
    FakeTransport transport(concat({login_steps(), {transport_failure(timed_out)}}));
    Client client(transport, options());
    try {
      client.get_submission("q");
      FAIL() << "expected XQueueUnreachable";
    } catch (const XQueueUnreachable& error) {
      EXPECT_EQ(error.timed_out(), timed_out);
      EXPECT_THAT(error.what(), HasSubstr("http://xq/"));
    }
  }
}

TEST(XQueueClientErrors, UnreachableDuringLoginIsUnreachable) {
  FakeTransport transport({transport_failure(false)});
  Client client(transport, options());
  EXPECT_THROW(client.get_queuelen("q"), XQueueUnreachable);
  EXPECT_FALSE(client.logged_in());
}

TEST(XQueueClientErrors, ServerErrorsCarryTheStatus) {
  for (const long status : {500L, 503L, 404L}) {
    FakeTransport transport(concat({login_steps(), {raw(status, "oops")}}));
    Client client(transport, options());
    try {
      client.get_submission("q");
      FAIL() << "expected XQueueServerError for " << status;
    } catch (const XQueueServerError& error) {
      EXPECT_EQ(error.status(), status);
      EXPECT_THAT(error.what(), HasSubstr(std::to_string(status)));
      EXPECT_THAT(error.what(), HasSubstr(kBase + "/xqueue/get_submission/?queue_name=q"));
    }
    EXPECT_EQ(transport.count("POST", kLoginUrl), 1);  // a server error is not an auth problem
  }
}

// ---- put_result -----------------------------------------------------------------------------------------

TEST(XQueueClientPutResult, PostsHeaderVerbatimAndGradeAsJson) {
  FakeTransport transport(concat({login_steps(), {reply({{"return_code", 0}, {"content", ""}})}}));
  Client client(transport, options());
  Submission submission;
  submission.raw_header = kHeader;
  submission.submission_id = 42;
  EXPECT_EQ(client.put_result(submission, {true, 0.75, "<p>3 of 4 &amp; more</p>"}).outcome,
            PutOutcome::Accepted);

  const auto& post = transport.requests.back();
  EXPECT_EQ(post.method, "POST");
  EXPECT_EQ(post.url, kBase + "/xqueue/put_result/");
  EXPECT_EQ(header(post, "Content-Type"), "application/x-www-form-urlencoded");
  const auto fields = form_fields(post.body);
  ASSERT_EQ(fields.size(), 2u);
  EXPECT_EQ(fields.at("xqueue_header"), kHeader);
  EXPECT_EQ(fields.at("xqueue_body"), R"({"correct":true,"score":0.75,"msg":"<p>3 of 4 &amp; more</p>"})");
}

TEST(XQueueClientPutResult, IncorrectKeyIsAnOutcomeNotAnError) {
  FakeTransport transport(
      concat({login_steps(), {reply({{"return_code", 1}, {"content", "Incorrect key for submission"}})}}));
  Client client(transport, options());
  EXPECT_EQ(client.put_result(kHeader, {false, 0.0, "x"}).outcome, PutOutcome::IncorrectKey);
}

// "Submission does not exist", "Incorrect reply format": posting again cannot help.
TEST(XQueueClientPutResult, OtherRefusalsArePermanentWithTheServersReason) {
  FakeTransport transport(
      concat({login_steps(), {reply({{"return_code", 1}, {"content", "Submission does not exist"}})}}));
  Client client(transport, options());
  const auto posted = client.put_result(kHeader, {false, 0.0, "x"});
  EXPECT_EQ(posted.outcome, PutOutcome::Refused);
  EXPECT_EQ(posted.reason, "Submission does not exist");
}

TEST(XQueueClientPutResult, AnOldServersServerErrorIsRetriedLater) {
  FakeTransport transport(concat({login_steps(), {raw(500, "<h1>Server Error (500)</h1>")}}));
  Client client(transport, options());
  try {
    client.put_result(kHeader, {false, 0.0, "x"});
    FAIL() << "expected XQueueServerError";
  } catch (const XQueueServerError& error) {
    EXPECT_EQ(error.status(), 500);
    EXPECT_THAT(error.what(), HasSubstr("Server Error (500)")) << "the body's reason is in the message";
  }
}

TEST(XQueueClientPutResult, ReloginRebuildsTheCsrfHeaderForTheRetry) {
  FakeTransport transport(
      {with_cookie(reply({{"return_code", 1}, {"content", "login_required"}}), "csrftoken", "old"),
       reply({{"return_code", 0}, {"content", "Logged in"}}), status_only(302),
       with_cookie(reply({{"return_code", 1}, {"content", "login_required"}}), "csrftoken", "new"),
       reply({{"return_code", 0}, {"content", "Logged in"}}), reply({{"return_code", 0}, {"content", ""}})});
  Client client(transport, options());
  EXPECT_EQ(client.put_result(kHeader, {true, 1.0, ""}).outcome, PutOutcome::Accepted);
  ASSERT_EQ(transport.requests.size(), 6u);
  EXPECT_EQ(header(transport.requests[2], "X-CSRFToken"), "old");
  EXPECT_EQ(header(transport.requests[5], "X-CSRFToken"), "new");
  EXPECT_EQ(form_fields(transport.requests[5].body).at("xqueue_header"), kHeader);
}

// ---- get_queuelen ---------------------------------------------------------------------------------------

TEST(XQueueClientQueuelen, ReturnsTheCount) {
  FakeTransport transport(concat({login_steps(), {reply({{"return_code", 0}, {"content", 17}})}}));
  Client client(transport, options());
  EXPECT_EQ(client.get_queuelen("py queue"), std::optional<std::int64_t>(17));
  EXPECT_EQ(transport.requests.back().url, kBase + "/xqueue/get_queuelen/?queue_name=py%20queue");
}

TEST(XQueueClientQueuelen, UnknownQueueIsRejectedAndBadCountIsMalformed) {
  FakeTransport unknown(
      concat({login_steps(), {reply({{"return_code", 1}, {"content", "Valid queue names are: a, b"}})}}));
  Client client(unknown, options());
  EXPECT_THROW(client.get_queuelen("q"), XQueueRejected);

  for (const json& content : {json("many"), json(-1), json(2.5), json::object()}) {
    FakeTransport bad(concat({login_steps(), {reply({{"return_code", 0}, {"content", content}})}}));
    Client other(bad, options());
    EXPECT_THROW(other.get_queuelen("q"), MalformedReply) << content.dump();
  }
}

TEST(XQueueClientQueuelen, AServerWithoutItIsAskedOnceThenNever) {
  FakeTransport transport(concat({login_steps(), {raw(404, "<h1>Not Found</h1>")}}));
  Client client(transport, options());
  EXPECT_EQ(client.get_queuelen("q"), std::nullopt);
  EXPECT_FALSE(client.has_queue_length());
  EXPECT_EQ(client.get_queuelen("q"), std::nullopt);
  EXPECT_TRUE(transport.script_done());  // the second call sent nothing (an unscripted request fails)
}

// ---- the LMS's API (edx-submissions XQueueViewSet) ------------------------------------------------------

ClientOptions lms_options() {
  auto lms = options();
  lms.api = ServerApi::Lms;
  return lms;
}

// The LMS's login: GET sets csrftoken, the POST logs in and rotates it.
std::vector<Step> lms_login_steps() {
  return {with_cookie(reply({{"return_code", 0}, {"content", ""}}), "csrftoken", "before-login"),
          with_cookie(reply({{"return_code", 0}, {"content", "Logged in"}}), "csrftoken", "rotated")};
}

json lms_refusal(const std::string& content) { return {{"return_code", 1}, {"content", content}}; }
json drf_detail(const std::string& detail) { return {{"detail", detail}}; }

TEST(LmsStatusMeaning, EachStatusAsTheLmsMeansIt) {
  const auto meaning = [](long status, const json& body) {
    return status_meaning(ServerApi::Lms, status, body.dump());
  };
  EXPECT_EQ(meaning(200, lms_refusal("Queue 'q' is empty")), StatusMeaning::Reply);
  EXPECT_EQ(meaning(403, drf_detail("Authentication credentials were not provided.")),
            StatusMeaning::LoginRequired);
  EXPECT_EQ(meaning(403, drf_detail("CSRF Failed: CSRF token missing.")), StatusMeaning::LoginRequired);
  EXPECT_EQ(meaning(403, drf_detail("You do not have permission to perform this action.")),
            StatusMeaning::PermissionDenied);
  EXPECT_EQ(meaning(403, lms_refusal("Incorrect key for submission")), StatusMeaning::Reply);
  EXPECT_EQ(meaning(400, lms_refusal("Incorrect reply format")), StatusMeaning::Reply);
  EXPECT_EQ(meaning(404, lms_refusal("Submission does not exist")), StatusMeaning::Reply);
  EXPECT_EQ(status_meaning(ServerApi::Lms, 404, "<h1>Not Found</h1>"), StatusMeaning::Unexpected);
  EXPECT_EQ(meaning(409, lms_refusal("Submission is currently being processed")), StatusMeaning::ServerError);
  EXPECT_EQ(status_meaning(ServerApi::Lms, 502, "Bad gateway"), StatusMeaning::ServerError);
  EXPECT_EQ(status_meaning(ServerApi::Lms, 401, ""), StatusMeaning::LoginRequired);
  // The old server: statuses mean what its Django views and proxies meant.
  EXPECT_EQ(status_meaning(ServerApi::XQueue, 302, ""), StatusMeaning::LoginRequired);
  EXPECT_EQ(status_meaning(ServerApi::XQueue, 403, drf_detail("You do not have permission").dump()),
            StatusMeaning::LoginRequired);
  EXPECT_EQ(status_meaning(ServerApi::XQueue, 404, ""), StatusMeaning::Unexpected);
}

TEST(LmsPutResult, PermanentRefusalsAreSettledWithTheirReason) {
  const auto outcome = [](long status, const json& body) {
    return put_result_outcome(ServerApi::Lms, status, body.dump(), "put_result");
  };
  EXPECT_EQ(outcome(200, {{"return_code", 0}, {"content", ""}}).outcome, PutOutcome::Accepted);
  EXPECT_EQ(outcome(403, lms_refusal("Incorrect key for submission")).outcome, PutOutcome::IncorrectKey);
  const auto missing = outcome(404, lms_refusal("Submission does not exist"));
  EXPECT_EQ(missing.outcome, PutOutcome::Refused);
  EXPECT_EQ(missing.reason, "Submission does not exist");
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(outcome(400, lms_refusal("Incorrect reply format")).outcome, PutOutcome::Refused);
  const auto answered = put_result_outcome(ServerApi::Lms, 500, "<h1>Server Error (500)</h1>", "put_result");
  EXPECT_EQ(answered.outcome, PutOutcome::Refused);
  EXPECT_THAT(answered.reason, HasSubstr("already has a result"));
  EXPECT_THAT(answered.reason, HasSubstr("Server Error (500)"));
  EXPECT_THROW(outcome(409, lms_refusal("Submission is currently being processed")), XQueueServerError);
  EXPECT_THROW(put_result_outcome(ServerApi::Lms, 503, "", "put_result"), XQueueServerError);
  // On the old server a 500 is only a server error: retried.
  EXPECT_THROW(put_result_outcome(ServerApi::XQueue, 500, "", "put_result"), XQueueServerError);
}

TEST(LmsClient, PutResultEchoesTheCsrfTokenAsRotatedByTheLogin) {
  FakeTransport transport(concat({lms_login_steps(), {reply({{"return_code", 0}, {"content", ""}})}}));
  Client client(transport, lms_options());
  EXPECT_EQ(client.put_result(kHeader, {true, 1.0, ""}).outcome, PutOutcome::Accepted);
  EXPECT_EQ(header(transport.requests.back(), "X-CSRFToken"), "rotated");
  EXPECT_EQ(header(transport.requests.back(), "Referer"), kBase + "/xqueue/put_result/");
}

TEST(LmsClient, TheEdxCsrfCookieNameWorksToo) {
  FakeTransport transport(
      {reply({{"return_code", 0}, {"content", ""}}),
       with_cookie(reply({{"return_code", 0}, {"content", "Logged in"}}), "edx-csrftoken", "edx-token"),
       reply({{"return_code", 0}, {"content", ""}})});
  Client client(transport, lms_options());
  client.put_result(kHeader, {true, 1.0, ""});
  EXPECT_EQ(header(transport.requests.back(), "X-CSRFToken"), "edx-token");
}

TEST(LmsClient, NotLoggedInLogsInOnceThenRetries) {
  FakeTransport transport(concat({lms_login_steps(),
                                  {reply(drf_detail("Authentication credentials were not provided."), 403)},
                                  lms_login_steps(),
                                  {reply(lms_refusal("Queue 'q' is empty"))}}));
  Client client(transport, lms_options());
  EXPECT_EQ(client.get_submission("q"), std::nullopt);
  EXPECT_EQ(transport.count("POST", kLoginUrl), 2);
}

TEST(LmsClient, APermissionRefusalIsAConfigurationErrorWithoutAnotherLogin) {
  FakeTransport transport(concat(
      {lms_login_steps(), {reply(drf_detail("You do not have permission to perform this action."), 403)}}));
  Client client(transport, lms_options());
  try {
    client.get_submission("q");
    FAIL() << "expected XQueuePermissionDenied";
  } catch (const XQueuePermissionDenied& error) {
    EXPECT_THAT(error.what(), HasSubstr("group 'xqueue'"));
    EXPECT_THAT(error.what(), HasSubstr("You do not have permission"));
  }
  EXPECT_EQ(transport.count("POST", kLoginUrl), 1);
}

TEST(LmsClient, AWrongPasswordIsAnAuthErrorWithTheReason) {
  FakeTransport transport(
      {reply({{"return_code", 0}, {"content", ""}}), reply(lms_refusal("Incorrect login credentials"), 401)});
  Client client(transport, lms_options());
  try {
    client.login();
    FAIL() << "expected XQueueAuthError";
  } catch (const XQueueAuthError& error) {
    EXPECT_THAT(error.what(), HasSubstr("HTTP 401"));
    EXPECT_THAT(error.what(), HasSubstr("Incorrect login credentials"));
    EXPECT_THAT(error.what(), Not(HasSubstr("p&ss word")));
  }
}

TEST(LmsClient, NoQueueLengthIsAskedOf) {
  FakeTransport transport({});
  Client client(transport, lms_options());
  EXPECT_EQ(client.get_queuelen("q"), std::nullopt);
  EXPECT_TRUE(transport.requests.empty());
}

TEST(LmsClient, ServerErrorsCarryTheBodysReason) {
  FakeTransport transport(
      concat({lms_login_steps(), {reply(lms_refusal("Unable to serialize submission payload"), 500)}}));
  Client client(transport, lms_options());
  try {
    client.get_submission("q");
    FAIL() << "expected XQueueServerError";
  } catch (const XQueueServerError& error) {
    EXPECT_EQ(error.status(), 500);
    EXPECT_THAT(error.what(), HasSubstr("Unable to serialize submission payload"));
  }
}

}  // namespace
}  // namespace xqw::xqueue
