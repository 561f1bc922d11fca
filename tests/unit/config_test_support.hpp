// Test support for config tests: throw-away config roots, fixture paths, problem look-up.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"

namespace xqw::config::testing {

namespace fs = std::filesystem;

inline fs::path fixture(const std::string& relative) {
  return fs::path(XQW_SOURCE_DIR) / "tests/unit/fixtures/config" / relative;
}

// A config root in a fresh temporary directory, removed when the test ends.
class TempRoot {
 public:
  TempRoot() {
    std::string pattern = ::testing::TempDir() + "xqw-config-XXXXXX";
    if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  ~TempRoot() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempRoot(const TempRoot&) = delete;
  TempRoot& operator=(const TempRoot&) = delete;

  const fs::path& path() const { return path_; }

  fs::path write(const std::string& relative, const std::string& content) const {
    const fs::path file = path_ / relative;
    fs::create_directories(file.parent_path());
    std::ofstream(file, std::ios::binary) << content;
    return file;
  }

  fs::path mkdir(const std::string& relative) const {
    fs::create_directories(path_ / relative);
    return path_ / relative;
  }

  // Copies a fixture root here, e.g. "upstream-600".
  void copy_fixture(const std::string& name) const {
    fs::copy(fixture(name), path_, fs::copy_options::recursive | fs::copy_options::overwrite_existing);
  }

  std::string read(const std::string& relative) const {
    std::ifstream in(path_ / relative, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  }

 private:
  fs::path path_;
};

inline EnvLookup env_of(std::map<std::string, std::string> values) {
  return [values = std::move(values)](const std::string& name) -> std::optional<std::string> {
    const auto found = values.find(name);
    if (found == values.end()) return std::nullopt;
    return found->second;
  };
}

// The names `env_of` knows, for the XQWATCHER_ settings' look-up.
inline EnvNames env_names_of(std::map<std::string, std::string> values) {
  return [values = std::move(values)](std::string_view prefix) {
    std::vector<std::string> names;
    for (const auto& [name, value] : values) {
      if (name.starts_with(prefix)) names.push_back(name);
    }
    return names;
  };
}

inline LoadResult load(const fs::path& dir, std::map<std::string, std::string> env = {}) {
  LoadOptions options;
  options.env = env_of(env);
  options.env_names = env_names_of(std::move(env));
  return load_config_root(dir, options);
}

// Every problem, one per line: the failure message of an assertion about problems.
inline std::string all_problems(const LoadResult& result) {
  std::string out;
  for (const auto& problem : result.errors) out += "  error: " + problem.to_string() + "\n";
  for (const auto& problem : result.warnings) out += "  warning: " + problem.to_string() + "\n";
  return out.empty() ? "  (no problems)\n" : out;
}

inline const Problem* with_key(const std::vector<Problem>& problems, std::string_view key) {
  for (const auto& problem : problems) {
    if (problem.key == key) return &problem;
  }
  return nullptr;
}

inline void replace_all(std::string& text, std::string_view from, std::string_view to) {
  for (auto at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size())) {
    text.replace(at, from.size(), to);
  }
}

}  // namespace xqw::config::testing
