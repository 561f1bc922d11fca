// XQueue reply parsing: both reply shapes, every malformed shape, the empty queue, the put_result body.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>

#include "xqueue/xqueue.hpp"

namespace xqw::xqueue {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

// A get_submission reply built the way XQueue builds it: header, body and files are JSON strings inside the
// content, which is itself a JSON string.
std::string submission_reply(const std::string& header, const std::string& body, const json& files = "") {
  const json content = {{"xqueue_header", header}, {"xqueue_body", body}, {"xqueue_files", files}};
  return json{{"return_code", 0}, {"content", content.dump()}}.dump();
}

const std::string kHeader = R"({"submission_id": 42, "submission_key": "5f1e0c0ffee"})";  // Python's spacing

std::string body_with(const json& fields) { return fields.dump(); }

json good_body() {
  return {{"student_info",
           R"({"anonymous_student_id": "abc", "submission_time": "20240101120000", "random_seed": 7})"},
          {"grader_payload", "\n  {\"grader\": \"ps01/hello/grade.py\", \"lang\": \"en\"}\n"},
          {"student_response", "def f(x):\n    return 2 * x\n"}};
}

// Runs `parse` and returns the MalformedReply it must throw.
template <typename Parse>
MalformedReply expect_malformed(Parse parse) {
  try {
    parse();
  } catch (const MalformedReply& error) {
    return error;
  } catch (const std::exception& other) {
    ADD_FAILURE() << "expected MalformedReply, got: " << other.what();
    return MalformedReply("wrong exception");
  }
  ADD_FAILURE() << "expected MalformedReply, nothing was thrown";
  return MalformedReply("nothing thrown");
}

MalformedReply malformed_submission(const std::string& reply_body,
                                    GraderPayloadPolicy policy = GraderPayloadPolicy::RequireJson) {
  return expect_malformed([&] { parse_submission_reply(reply_body, "py-queue", policy); });
}

// ---- parse_reply ----------------------------------------------------------------------------------------

TEST(XQueueParseReply, ReadsReturnCodeShape) {
  const Reply ok = parse_reply(R"({"return_code": 0, "content": "Logged in"})", "login");
  EXPECT_TRUE(ok.ok());
  EXPECT_EQ(ok.content, "Logged in");

  const Reply refused =
      parse_reply(R"({"return_code": 1, "content": "Incorrect login credentials"})", "login");
  EXPECT_FALSE(refused.ok());
  EXPECT_EQ(reason_text(refused.content), "Incorrect login credentials");
}

TEST(XQueueParseReply, AnyNonZeroReturnCodeIsFailure) {
  EXPECT_EQ(parse_reply(R"({"return_code": 2, "content": "x"})", "e").return_code, 1);
  EXPECT_EQ(parse_reply(R"({"return_code": -1, "content": "x"})", "e").return_code, 1);
}

TEST(XQueueParseReply, ReadsSuccessShapeWithWholeObjectAsContent) {
  const Reply ok = parse_reply(R"({"success": true, "queue": "q"})", "e");
  EXPECT_TRUE(ok.ok());
  EXPECT_EQ(ok.content, json({{"success", true}, {"queue", "q"}}));

  const Reply failed = parse_reply(R"({"success": false, "error": "no such queue"})", "e");
  EXPECT_FALSE(failed.ok());
  EXPECT_EQ(reason_text(failed.content), "no such queue");

  EXPECT_TRUE(parse_reply(R"({"success": 1})", "e").ok());  // Python: 1 == True
  EXPECT_FALSE(parse_reply(R"({"success": 0})", "e").ok());
}

TEST(XQueueParseReply, ReturnCodeWinsWhenBothShapesArePresent) {
  const Reply reply = parse_reply(R"({"return_code": 1, "content": "no", "success": true})", "e");
  EXPECT_FALSE(reply.ok());
  EXPECT_EQ(reply.content, "no");
}

TEST(XQueueParseReply, NotJsonIsMalformedAndNamesTheEndpoint) {
  const auto error = expect_malformed(
      [] { parse_reply("<html>502 Bad Gateway</html>", "http://xq/xqueue/get_submission/"); });
  EXPECT_THAT(error.what(), HasSubstr("http://xq/xqueue/get_submission/"));
  EXPECT_THAT(error.what(), HasSubstr("not JSON"));
  EXPECT_FALSE(error.submission_id().has_value());
  expect_malformed([] { parse_reply("", "e"); });
}

TEST(XQueueParseReply, NonObjectIsMalformed) {
  EXPECT_THAT(expect_malformed([] { parse_reply(R"([0, "content"])", "e"); }).what(), HasSubstr("array"));
  EXPECT_THAT(expect_malformed([] { parse_reply(R"("Logged in")", "e"); }).what(), HasSubstr("string"));
}

TEST(XQueueParseReply, ReturnCodeOfWrongTypeIsMalformed) {
  for (const char* body :
       {R"({"return_code": "0", "content": ""})", R"({"return_code": true, "content": ""})",
        R"({"return_code": 0.5, "content": ""})", R"({"return_code": null, "content": ""})"}) {
    EXPECT_THAT(expect_malformed([&] { parse_reply(body, "e"); }).what(), HasSubstr("return_code")) << body;
  }
}

TEST(XQueueParseReply, SuccessOfWrongTypeIsMalformed) {
  for (const char* body : {R"({"success": "yes"})", R"({"success": 2})", R"({"success": null})"}) {
    EXPECT_THAT(expect_malformed([&] { parse_reply(body, "e"); }).what(), HasSubstr("success")) << body;
  }
}

TEST(XQueueParseReply, MissingContentOrCodeIsMalformed) {
  EXPECT_THAT(expect_malformed([] { parse_reply(R"({"return_code": 0})", "e"); }).what(),
              HasSubstr("no content"));
  EXPECT_THAT(expect_malformed([] { parse_reply(R"({"content": "x"})", "e"); }).what(),
              HasSubstr("neither return_code nor success"));
}

TEST(XQueueParseReply, LoginRequiredIsRecognised) {
  EXPECT_TRUE(says_login_required(parse_reply(R"({"return_code": 1, "content": "login_required"})", "e")));
  EXPECT_FALSE(
      says_login_required(parse_reply(R"({"return_code": 1, "content": "Queue 'q' is empty"})", "e")));
  EXPECT_FALSE(says_login_required(parse_reply(R"({"return_code": 0, "content": "login_required"})", "e")));
}

// ---- parse_submission_reply: well-formed ------------------------------------------------------------------

TEST(XQueueParseSubmission, DecodesEveryLayer) {
  const std::string body = body_with(good_body());
  const auto submission = parse_submission_reply(
      submission_reply(kHeader, body, R"({"data.csv": "https://files/data.csv"})"), "py-queue");
  ASSERT_TRUE(submission.has_value());
  EXPECT_EQ(submission->queue, "py-queue");
  EXPECT_EQ(submission->raw_header, kHeader);  // verbatim, spacing included
  EXPECT_EQ(submission->submission_id, 42);
  EXPECT_EQ(submission->submission_key, "5f1e0c0ffee");
  EXPECT_EQ(submission->raw_body, body);
  EXPECT_EQ(submission->student_response, "def f(x):\n    return 2 * x\n");
  EXPECT_TRUE(submission->grader_payload_is_json);
  EXPECT_EQ(submission->grader_payload, json({{"grader", "ps01/hello/grade.py"}, {"lang", "en"}}));
  EXPECT_EQ(submission->student_info.at("anonymous_student_id"), "abc");
  EXPECT_EQ(submission->student_info.at("random_seed"), 7);
  EXPECT_EQ(submission->files, json({{"data.csv", "https://files/data.csv"}}));
}

TEST(XQueueParseSubmission, AcceptsAlreadyDecodedObjects) {
  // Some stand-ins send nested objects instead of JSON strings; the header is then re-serialised.
  const json content = {{"xqueue_header", {{"submission_id", 9}, {"submission_key", "k"}}},
                        {"xqueue_body",
                         {{"grader_payload", {{"grader", "g.py"}}},
                          {"student_info", {{"anonymous_student_id", "s"}}},
                          {"student_response", "print(1)"}}},
                        {"xqueue_files", {{"a.txt", "u"}}}};
  const auto submission = parse_submission_reply(json{{"return_code", 0}, {"content", content}}.dump(), "q");
  ASSERT_TRUE(submission.has_value());
  EXPECT_EQ(json::parse(submission->raw_header), content["xqueue_header"]);
  EXPECT_EQ(submission->submission_id, 9);
  EXPECT_EQ(submission->grader_payload.at("grader"), "g.py");
  EXPECT_EQ(submission->student_info.at("anonymous_student_id"), "s");
  EXPECT_EQ(submission->files.at("a.txt"), "u");
}

TEST(XQueueParseSubmission, AcceptsSubmissionIdAsDigitString) {
  const auto submission = parse_submission_reply(
      submission_reply(R"({"submission_id": "77", "submission_key": "k"})", body_with(good_body())), "q");
  ASSERT_TRUE(submission.has_value());
  EXPECT_EQ(submission->submission_id, 77);
}

TEST(XQueueParseSubmission, EmptyOrAbsentFilesAndStudentInfoDecodeToEmptyObjects) {
  json body = good_body();
  body.erase("student_info");
  auto submission = parse_submission_reply(submission_reply(kHeader, body_with(body), ""), "q");
  ASSERT_TRUE(submission.has_value());
  EXPECT_EQ(submission->files, json::object());
  EXPECT_EQ(submission->student_info, json::object());

  const json content = {{"xqueue_header", kHeader},
                        {"xqueue_body", body_with(good_body())}};  // no xqueue_files
  submission = parse_submission_reply(json{{"return_code", 0}, {"content", content.dump()}}.dump(), "q");
  ASSERT_TRUE(submission.has_value());
  EXPECT_EQ(submission->files, json::object());
}

TEST(XQueueParseSubmission, UnusableStudentInfoBecomesEmptyObject) {
  json body = good_body();
  body["student_info"] = "not json";
  const auto submission = parse_submission_reply(submission_reply(kHeader, body_with(body)), "q");
  ASSERT_TRUE(submission.has_value());
  EXPECT_EQ(submission->student_info, json::object());
}

TEST(XQueueParseSubmission, EmptyQueueIsNullopt) {
  EXPECT_FALSE(
      parse_submission_reply(R"({"return_code": 1, "content": "Queue 'py-queue' is empty"})", "py-queue"));
}

TEST(XQueueParseSubmission, OtherRefusalsAreRejectedWithTheServersReason) {
  try {
    parse_submission_reply(R"({"return_code": 1, "content": "Queue 'nope' not found"})", "nope");
    FAIL() << "expected XQueueRejected";
  } catch (const XQueueRejected& error) {
    EXPECT_EQ(error.reason(), "Queue 'nope' not found");
    EXPECT_THAT(error.what(), HasSubstr("queue 'nope'"));
  }
}

// ---- parse_submission_reply: malformed shapes ------------------------------------------------------------

TEST(XQueueParseSubmission, ContentOfWrongTypeIsMalformed) {
  const auto error = malformed_submission(R"({"return_code": 0, "content": 12})");
  EXPECT_THAT(error.what(), HasSubstr("content is a number"));
  EXPECT_THAT(error.what(), HasSubstr("queue 'py-queue'"));
  EXPECT_FALSE(error.submission_id().has_value());
}

TEST(XQueueParseSubmission, ContentStringNotJsonIsMalformed) {
  const auto error = malformed_submission(R"({"return_code": 0, "content": "{xqueue_header: nope"})");
  EXPECT_THAT(error.what(), HasSubstr("content is not JSON"));
  EXPECT_FALSE(error.submission_id().has_value());
}

TEST(XQueueParseSubmission, ContentJsonButNotObjectIsMalformed) {
  EXPECT_THAT(malformed_submission(R"({"return_code": 0, "content": "[1, 2]"})").what(), HasSubstr("array"));
}

TEST(XQueueParseSubmission, HeaderNotJsonIsMalformedWithoutId) {
  const auto error = malformed_submission(submission_reply("{submission_id: 42", body_with(good_body())));
  EXPECT_THAT(error.what(), HasSubstr("xqueue_header is not JSON"));
  EXPECT_FALSE(error.submission_id().has_value());
  EXPECT_FALSE(error.raw_header().has_value());
}

TEST(XQueueParseSubmission, HeaderMissingOrOfWrongTypeIsMalformed) {
  const json no_header = {{"xqueue_body", body_with(good_body())}};
  EXPECT_THAT(malformed_submission(json{{"return_code", 0}, {"content", no_header.dump()}}.dump()).what(),
              HasSubstr("xqueue_header is missing"));
  const json numeric_header = {{"xqueue_header", 5}, {"xqueue_body", body_with(good_body())}};
  EXPECT_THAT(
      malformed_submission(json{{"return_code", 0}, {"content", numeric_header.dump()}}.dump()).what(),
      HasSubstr("xqueue_header is a number"));
  EXPECT_THAT(malformed_submission(submission_reply("[42]", body_with(good_body()))).what(),
              HasSubstr("expected an object"));
}

TEST(XQueueParseSubmission, HeaderWithoutSubmissionIdIsMalformed) {
  for (const char* header :
       {R"({"submission_key": "k"})", R"({"submission_id": "4x2", "submission_key": "k"})",
        R"({"submission_id": 4.5, "submission_key": "k"})",
        R"({"submission_id": null, "submission_key": "k"})"}) {
    const auto error = malformed_submission(submission_reply(header, body_with(good_body())));
    EXPECT_THAT(error.what(), HasSubstr("submission_id")) << header;
    EXPECT_FALSE(error.submission_id().has_value()) << header;
  }
}

TEST(XQueueParseSubmission, HeaderWithoutSubmissionKeyIsMalformedAndCarriesTheId) {
  for (const char* header : {R"({"submission_id": 42})", R"({"submission_id": 42, "submission_key": 7})",
                             R"({"submission_id": 42, "submission_key": ""})"}) {
    const auto error = malformed_submission(submission_reply(header, body_with(good_body())));
    EXPECT_THAT(error.what(), HasSubstr("submission_key")) << header;
    EXPECT_EQ(error.submission_id(), 42) << header;
  }
}

TEST(XQueueParseSubmission, BodyNotJsonIsMalformedAndCarriesIdAndHeader) {
  const auto error = malformed_submission(submission_reply(kHeader, "{\"student_response\": "));
  EXPECT_THAT(error.what(), HasSubstr("xqueue_body is not JSON"));
  EXPECT_THAT(error.what(), HasSubstr("submission 42"));
  EXPECT_EQ(error.submission_id(), 42);
  EXPECT_EQ(error.raw_header(), kHeader);  // enough to still answer the submission
}

TEST(XQueueParseSubmission, BodyMissingOrNotAnObjectIsMalformed) {
  const json no_body = {{"xqueue_header", kHeader}};
  EXPECT_THAT(malformed_submission(json{{"return_code", 0}, {"content", no_body.dump()}}.dump()).what(),
              HasSubstr("xqueue_body is missing"));
  EXPECT_THAT(malformed_submission(submission_reply(kHeader, "\"just text\"")).what(),
              HasSubstr("xqueue_body is a JSON string"));
}

TEST(XQueueParseSubmission, StudentResponseMissingOrOfWrongTypeIsMalformed) {
  json body = good_body();
  body.erase("student_response");
  auto error = malformed_submission(submission_reply(kHeader, body_with(body)));
  EXPECT_THAT(error.what(), HasSubstr("no student_response"));
  EXPECT_EQ(error.submission_id(), 42);

  body["student_response"] = json::array({"a"});
  error = malformed_submission(submission_reply(kHeader, body_with(body)));
  EXPECT_THAT(error.what(), HasSubstr("student_response is a array"));
}

TEST(XQueueParseSubmission, GraderPayloadNotJsonIsMalformedByDefault) {
  json body = good_body();
  body["grader_payload"] = "ps01/hello/grade.py";
  const auto error = malformed_submission(submission_reply(kHeader, body_with(body)));
  EXPECT_THAT(error.what(), HasSubstr("grader_payload is not JSON"));
  EXPECT_EQ(error.submission_id(), 42);
  EXPECT_EQ(error.raw_header(), kHeader);
}

TEST(XQueueParseSubmission, GraderPayloadNotJsonIsKeptAsTextWhenAllowed) {
  json body = good_body();
  body["grader_payload"] = "ps01/hello/grade.py";
  const auto submission =
      parse_submission_reply(submission_reply(kHeader, body_with(body)), "q", GraderPayloadPolicy::AllowText);
  ASSERT_TRUE(submission.has_value());
  EXPECT_FALSE(submission->grader_payload_is_json);
  EXPECT_EQ(submission->grader_payload, "ps01/hello/grade.py");
}

TEST(XQueueParseSubmission, GraderPayloadJsonScalarIsNotAnObject) {
  json body = good_body();
  body["grader_payload"] = "1";
  EXPECT_THAT(malformed_submission(submission_reply(kHeader, body_with(body))).what(),
              HasSubstr("grader_payload is a JSON number, not an object"));
  const auto submission =
      parse_submission_reply(submission_reply(kHeader, body_with(body)), "q", GraderPayloadPolicy::AllowText);
  ASSERT_TRUE(submission.has_value());
  EXPECT_FALSE(submission->grader_payload_is_json);
  EXPECT_EQ(submission->grader_payload, "1");
}

TEST(XQueueParseSubmission, GraderPayloadMissingIsMalformedByDefault) {
  json body = good_body();
  body.erase("grader_payload");
  EXPECT_THAT(malformed_submission(submission_reply(kHeader, body_with(body))).what(),
              HasSubstr("grader_payload is missing"));
}

TEST(XQueueParseSubmission, FilesNotJsonOrNotAnObjectIsMalformed) {
  auto error = malformed_submission(submission_reply(kHeader, body_with(good_body()), "{not json"));
  EXPECT_THAT(error.what(), HasSubstr("xqueue_files is not JSON"));
  EXPECT_EQ(error.submission_id(), 42);
  EXPECT_THAT(malformed_submission(submission_reply(kHeader, body_with(good_body()), "[\"a\"]")).what(),
              HasSubstr("xqueue_files is a JSON array"));
  EXPECT_THAT(malformed_submission(submission_reply(kHeader, body_with(good_body()), 3)).what(),
              HasSubstr("xqueue_files is a number"));
}

TEST(XQueueParseSubmission, MalformedOuterReplyPropagates) {
  EXPECT_THAT(malformed_submission("Service Unavailable").what(), HasSubstr("get_submission"));
}

// ---- encode_grade_reply ----------------------------------------------------------------------------------

TEST(XQueueEncodeGradeReply, WritesCorrectScoreMsgInOrder) {
  EXPECT_EQ(encode_grade_reply({true, 0.5, "<p>ok</p>"}),
            R"({"correct":true,"score":0.5,"msg":"<p>ok</p>"})");
  EXPECT_EQ(json::parse(encode_grade_reply({false, 0.0, "a \"quoted\"\nline"})),
            json({{"correct", false}, {"score", 0.0}, {"msg", "a \"quoted\"\nline"}}));
}

TEST(XQueueEncodeGradeReply, NonFiniteScoreBecomesZero) {
  EXPECT_EQ(json::parse(encode_grade_reply({false, std::nan(""), ""})).at("score"), 0.0);
  EXPECT_EQ(json::parse(encode_grade_reply({true, std::numeric_limits<double>::infinity(), ""})).at("score"),
            0.0);
}

TEST(XQueueEncodeGradeReply, InvalidUtf8InMsgIsReplacedNotThrown) {
  const std::string encoded = encode_grade_reply({false, 0.0, std::string("bad \xff byte")});
  EXPECT_EQ(json::parse(encoded).at("msg"), "bad \xEF\xBF\xBD byte");  // U+FFFD
}

}  // namespace
}  // namespace xqw::xqueue
