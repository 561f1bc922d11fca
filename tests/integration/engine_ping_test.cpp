#include <gtest/gtest.h>

#include "http/http.hpp"

// The engine fixture (scripts/engine) must have left an engine answering on the socket.
TEST(Engine, AnswersPingOnTheUnixSocket) {
  auto transport = xqw::http::make_curl_transport({.unix_socket = "/var/run/docker.sock"});
  auto response = transport->perform({.method = "GET", .url = "http://docker/_ping"});
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.body, "OK");
}
