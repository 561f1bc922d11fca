// config (internal): one parsed JSON or YAML file as a plain tree, keys in file order, YAML line numbers.
// Both formats land here so one set of readers validates either.
#pragma once

#include <expected>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace xqw::config::detail {

struct Node {
  // Plain: an unquoted YAML scalar, whose type depends on what the reader asks for ("20" may be a
  // number or a string). Quoted YAML scalars and JSON strings are String.
  enum class Kind { Null, Bool, Number, String, Plain, List, Map };
  Kind kind = Kind::Null;
  std::string text;  // scalars: the text as written
  std::vector<Node> items;
  std::vector<std::pair<std::string, Node>> entries;
  int line = 0;  // 1-based; 0 when the format does not say (JSON)

  const Node* find(std::string_view key) const;
  bool is_scalar() const { return kind != Kind::List && kind != Kind::Map; }
};

// "a map", "a list", "a number", ...: for "expected X, got Y".
std::string_view describe(Node::Kind kind);

struct ParseFailure {
  int line = 0, column = 0;
  std::string reason;
};

struct DuplicateKey {
  std::string key;  // dotted path of the repeated key
  int line = 0;
};

struct ParsedTree {
  Node root;
  std::vector<DuplicateKey> duplicates;
};

// The file's tree, or where and why it cannot be read as JSON (YAML).
using ParsedFile = std::expected<ParsedTree, ParseFailure>;
ParsedFile parse_json(std::string_view text);
ParsedFile parse_yaml(const std::string& text);

}  // namespace xqw::config::detail
