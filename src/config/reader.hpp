// config (internal): typed reads from a Node that record a Problem (file, key, reason) instead of throwing;
// ${ENV} expansion, *_file secrets, paths relative to the file, "did you mean" for unknown keys.
#pragma once

#include <chrono>
#include <cstdint>
#include <expected>
#include <filesystem>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "config/tree.hpp"

namespace xqw::config::detail {

struct Findings {
  std::vector<Problem> errors, warnings;
};

std::string join_key(const std::string& prefix, std::string_view name);
std::string index_key(const std::string& prefix, std::size_t index);

// The closest of `known` to `unknown` (case-insensitive edit distance), or empty when none is close.
std::string closest(std::string_view unknown, const std::vector<std::string_view>& known);

// Why a string's ${...} references could not be expanded (names the reference and what to write instead).
struct ExpansionError {
  std::string reason;
};
// Expands ${VAR}, ${VAR:-fallback} (fallback when unset or empty) and $${ (a literal "${").
std::expected<std::string, ExpansionError> expand_env(std::string_view text, const EnvLookup& env);

class Reader {
 public:
  Reader(std::filesystem::path file, Findings& findings, const EnvLookup& env)
      : file_(std::move(file)), findings_(findings), env_(env) {}

  const std::filesystem::path& file() const { return file_; }
  // Relative paths in a file resolve against the directory holding that file.
  std::filesystem::path base_dir() const { return file_.parent_path(); }
  const EnvLookup& env() const { return env_; }

  void error(const Node& at, const std::string& key, std::string reason);
  void warn(const Node& at, const std::string& key, std::string reason);
  std::size_t error_count() const { return findings_.errors.size(); }

  // True when `node` has `kind`; otherwise records "expected <kind>, got <kind>".
  bool expect(const Node& node, Node::Kind kind, const std::string& key);
  // Records an error for every key of `map` not in `known`.
  void reject_unknown_keys(const Node& map, const std::string& key,
                           const std::vector<std::string_view>& known);

  // Typed reads. Each returns nullopt after recording why.
  std::optional<std::string> text(const Node& node, const std::string& key);         // string, ${} expanded
  std::optional<std::string> scalar_text(const Node& node, const std::string& key);  // string or number
  std::optional<bool> boolean(const Node& node, const std::string& key);
  std::optional<std::int64_t> integer(const Node& node, const std::string& key, std::int64_t min,
                                      std::int64_t max);
  std::optional<std::chrono::milliseconds> duration(const Node& node, const std::string& key);
  // A path; relative ones resolve against base_dir(). The result is absolute and normalised.
  std::optional<std::filesystem::path> path(const Node& node, const std::string& key);
  // `name` or `name_file` in `map` (not both); a file's trailing newlines are dropped.
  // nullopt when neither is present or on error (see error_count()).
  std::optional<std::string> secret(const Node& map, const std::string& map_key, std::string_view name);

 private:
  std::filesystem::path file_;
  Findings& findings_;
  const EnvLookup& env_;
};

}  // namespace xqw::config::detail
