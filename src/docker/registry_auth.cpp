// Registry credentials for pulls (pure, but for reading the file): a Docker CLI config.json's `auths`, the
// registry of an image reference as the docker CLI reads it, and the X-Registry-Auth header.
#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "docker/docker.hpp"
#include "text/text.hpp"

using xqw::text::ascii_lower;

namespace xqw::docker {
namespace {

using nlohmann::json;

constexpr std::string_view kDockerHub = "docker.io";
constexpr std::string_view kDockerHubServer = "https://index.docker.io/v1/";

// Standard base64 (RFC 4648 s.4), padding optional, as the docker CLI writes `auth`; nullopt when not base64.
std::optional<std::string> base64_decode(std::string_view text) {
  while (!text.empty() && text.back() == '=') text.remove_suffix(1);
  std::string out;
  std::uint32_t buffer = 0;
  int bits = 0;
  for (const char c : text) {
    int value;
    if (c >= 'A' && c <= 'Z') {
      value = c - 'A';
    } else if (c >= 'a' && c <= 'z') {
      value = c - 'a' + 26;
    } else if (c >= '0' && c <= '9') {
      value = c - '0' + 52;
    } else if (c == '+') {
      value = 62;
    } else if (c == '/') {
      value = 63;
    } else {
      return std::nullopt;
    }
    buffer = (buffer << 6) | static_cast<std::uint32_t>(value);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((buffer >> bits) & 0xff));
    }
  }
  if (bits >= 6) return std::nullopt;  // a single leftover character carries no whole byte
  return out;
}

// base64url with padding (RFC 4648 s.5): what the engine decodes X-Registry-Auth with.
std::string base64url_encode(std::string_view bytes) {
  static constexpr std::string_view kAlphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  std::size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    const std::uint32_t n = (static_cast<unsigned char>(bytes[i]) << 16) |
                            (static_cast<unsigned char>(bytes[i + 1]) << 8) |
                            static_cast<unsigned char>(bytes[i + 2]);
    for (int shift : {18, 12, 6, 0}) out.push_back(kAlphabet[(n >> shift) & 63]);
  }
  const std::size_t rest = bytes.size() - i;
  if (rest > 0) {
    std::uint32_t n = static_cast<unsigned char>(bytes[i]) << 16;
    if (rest == 2) n |= static_cast<unsigned char>(bytes[i + 1]) << 8;
    out.push_back(kAlphabet[(n >> 18) & 63]);
    out.push_back(kAlphabet[(n >> 12) & 63]);
    out.push_back(rest == 2 ? kAlphabet[(n >> 6) & 63] : '=');
    out.push_back('=');
  }
  return out;
}

// One `auths` entry read into a credential; a problem names the key and never quotes a value.
std::expected<RegistryCredential, RegistryAuthProblem> read_entry(const std::string& server,
                                                                  const json& entry) {
  const std::string key = "auths." + server;
  RegistryCredential credential{.registry = registry_key(server)};
  if (credential.registry.empty())
    return std::unexpected(RegistryAuthProblem{key, "is not a registry address"});
  if (!entry.is_object()) return std::unexpected(RegistryAuthProblem{key, "expected an object"});
  for (const char* field : {"auth", "username", "password", "identitytoken"}) {
    if (entry.contains(field) && !entry[field].is_string()) {
      return std::unexpected(RegistryAuthProblem{key + "." + field, "expected a string"});
    }
  }
  const auto text = [&](const char* field) {
    return entry.contains(field) ? entry[field].get<std::string>() : "";
  };
  credential.username = text("username");
  credential.password = text("password");
  credential.identity_token = text("identitytoken");
  if (const auto auth = text("auth"); !auth.empty()) {
    const auto decoded = base64_decode(auth);
    if (!decoded)
      return std::unexpected(RegistryAuthProblem{key + ".auth", "is not base64 (of user:password)"});
    const auto colon = decoded->find(':');
    if (colon == std::string::npos || colon == 0) {
      return std::unexpected(
          RegistryAuthProblem{key + ".auth", "does not decode to user:password (no user before a ':')"});
    }
    credential.username = decoded->substr(0, colon);
    credential.password = decoded->substr(colon + 1);
  }
  if (credential.identity_token.empty() && (credential.username.empty() || credential.password.empty())) {
    return std::unexpected(RegistryAuthProblem{
        key, credential.username.empty() && credential.password.empty()
                 ? "has no credentials: set auth (base64 of user:password), username and password, or "
                   "identitytoken (an empty entry is what `docker login` leaves with a credential helper)"
                 : "needs both a username and a password (or auth, or identitytoken)"});
  }
  return credential;
}

}  // namespace

std::string registry_of(std::string_view image) {
  const auto slash = image.find('/');
  if (slash == std::string_view::npos) return std::string(kDockerHub);
  const auto first = image.substr(0, slash);
  if (first.find_first_of(".:") == std::string_view::npos && first != "localhost") {
    return std::string(kDockerHub);
  }
  return registry_key(first);
}

std::string registry_key(std::string_view server) {
  for (std::string_view scheme : {"https://", "http://"}) {
    if (server.substr(0, scheme.size()) == scheme) {
      server.remove_prefix(scheme.size());
      break;
    }
  }
  server = server.substr(0, server.find('/'));
  // Host names are case-insensitive; the docker CLI compares them as written, which only ever misses.
  const auto host = ascii_lower(server);
  if (host == "index.docker.io" || host == "registry-1.docker.io" || host == kDockerHub) {
    return std::string(kDockerHub);
  }
  return host;
}

const RegistryCredential* RegistryAuths::find(std::string_view image) const {
  const auto registry = registry_of(image);
  for (const auto& credential : credentials) {
    if (credential.registry == registry) return &credential;
  }
  return nullptr;
}

std::expected<RegistryAuths, std::vector<RegistryAuthProblem>> parse_docker_config(std::string_view text) {
  const auto parsed = json::parse(text, nullptr, false);
  if (parsed.is_discarded()) return std::unexpected(std::vector<RegistryAuthProblem>{{"", "is not JSON"}});
  if (!parsed.is_object()) {
    return std::unexpected(std::vector<RegistryAuthProblem>{{"", "expected a JSON object"}});
  }
  std::vector<RegistryAuthProblem> problems;
  RegistryAuths auths;
  constexpr std::string_view kUseAuths =
      "credential helpers are not supported (the watcher runs no helper programs); put the registry's "
      "credentials under auths";
  if (const auto store = parsed.find("credsStore");
      store != parsed.end() && !(store->is_string() && store->get<std::string>().empty())) {
    std::string registries;
    if (const auto listed = parsed.find("auths"); listed != parsed.end() && listed->is_object()) {
      for (const auto& [server, entry] : listed->items()) {
        if (entry.is_object() && entry.empty()) registries += (registries.empty() ? "" : ", ") + server;
      }
    }
    problems.push_back(
        {"credsStore", std::string(kUseAuths) +
                           (registries.empty() ? "" : " (it holds the credentials of " + registries + ")")});
  }
  if (const auto helpers = parsed.find("credHelpers"); helpers != parsed.end()) {
    if (!helpers->is_object()) {
      problems.push_back({"credHelpers", "expected an object"});
    } else {
      for (const auto& [server, helper] : helpers->items()) {
        problems.push_back(
            {"credHelpers." + server, "registry " + registry_key(server) + ": " + std::string(kUseAuths)});
      }
    }
  }
  if (const auto listed = parsed.find("auths"); listed != parsed.end() && !listed->is_null()) {
    if (!listed->is_object()) {
      problems.push_back(
          {"auths", "expected an object of registry: {auth | username, password | identitytoken}"});
    } else {
      for (const auto& [server, entry] : listed->items()) {
        // Left by `docker login` next to a credsStore, already reported above.
        if (entry.is_object() && entry.empty() && parsed.contains("credsStore")) continue;
        auto credential = read_entry(server, entry);
        if (!credential) {
          problems.push_back(std::move(credential.error()));
          continue;
        }
        const auto same =
            std::find_if(auths.credentials.begin(), auths.credentials.end(),
                         [&](const auto& known) { return known.registry == credential->registry; });
        if (same != auths.credentials.end()) {
          if (same->username == credential->username && same->password == credential->password &&
              same->identity_token == credential->identity_token) {
            continue;
          }
          problems.push_back(
              {"auths." + server,
               "registry " + credential->registry +
                   " is listed twice, with different credentials (under another of its names)"});
          continue;
        }
        auths.credentials.push_back(std::move(*credential));
      }
    }
  }
  if (!problems.empty()) return std::unexpected(std::move(problems));
  return auths;
}

std::expected<RegistryAuths, std::vector<RegistryAuthProblem>> load_docker_config(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return std::unexpected(
        std::vector<RegistryAuthProblem>{{"", "cannot be read: " + std::string(std::strerror(errno))}});
  }
  std::ostringstream content;
  content << in.rdbuf();
  return parse_docker_config(content.str());
}

std::string registry_auth_header(const RegistryCredential& credential) {
  const std::string server =
      credential.registry == kDockerHub ? std::string(kDockerHubServer) : credential.registry;
  json body = credential.identity_token.empty()
                  ? json{{"username", credential.username},
                         {"password", credential.password},
                         {"serveraddress", server}}
                  : json{{"identitytoken", credential.identity_token}, {"serveraddress", server}};
  return base64url_encode(body.dump());
}

}  // namespace xqw::docker
