#include "http/http.hpp"

#include <gtest/gtest.h>

namespace xqw::http {

TEST(UrlEscape, KeepsUnreservedAndEscapesTheRest) {
  EXPECT_EQ(url_escape("abc-_.~XYZ09"), "abc-_.~XYZ09");
  EXPECT_EQ(url_escape("a b&c=d/é"), "a%20b%26c%3Dd%2F%C3%A9");
}

TEST(FormEncode, JoinsFieldsWithAmpersands) {
  EXPECT_EQ(form_encode({{"username", "lms"}, {"password", "p&ss word"}}),
            "username=lms&password=p%26ss%20word");
  EXPECT_EQ(form_encode({}), "");
}

TEST(ResponseHeader, LooksUpNamesIgnoringCase) {
  Response response;
  response.headers = {{"Content-Type", "application/json"}, {"Set-Cookie", "a=b"}};
  EXPECT_EQ(response.header("content-type"), "application/json");
  EXPECT_FALSE(response.header("Location").has_value());
}

}  // namespace xqw::http
