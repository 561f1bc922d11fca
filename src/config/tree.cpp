// config (internal): JSON (nlohmann SAX, keeps key order and duplicates) and YAML (yaml-cpp) into Node.
#include "config/tree.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <nlohmann/json.hpp>

namespace xqw::config::detail {
namespace {

std::string child_key(const std::string& parent, std::string_view name) {
  return parent.empty() ? std::string(name) : parent + "." + std::string(name);
}

bool has_entry(const Node& map, std::string_view key) {
  return std::any_of(map.entries.begin(), map.entries.end(),
                     [&](const auto& entry) { return entry.first == key; });
}

// Builds the tree from nlohmann's SAX events; nlohmann's own json type would sort keys and drop duplicates.
class JsonTreeBuilder {
 public:
  using json = nlohmann::json;

  JsonTreeBuilder(ParsedTree& out, std::optional<ParseFailure>& failure, std::string_view text)
      : out_(out), failure_(failure), text_(text) {}

  bool null() { return add(Node{Node::Kind::Null}); }
  bool boolean(bool value) { return add(scalar(Node::Kind::Bool, value ? "true" : "false")); }
  bool number_integer(json::number_integer_t value) {
    return add(scalar(Node::Kind::Number, std::to_string(value)));
  }
  bool number_unsigned(json::number_unsigned_t value) {
    return add(scalar(Node::Kind::Number, std::to_string(value)));
  }
  bool number_float(json::number_float_t, const std::string& text) {
    return add(scalar(Node::Kind::Number, text));
  }
  bool string(std::string& value) { return add(scalar(Node::Kind::String, value)); }
  bool binary(json::binary_t&) { return true; }
  bool start_object(std::size_t) { return open(Node::Kind::Map); }
  bool end_object() { return close(); }
  bool start_array(std::size_t) { return open(Node::Kind::List); }
  bool end_array() { return close(); }
  bool key(std::string& name) {
    pending_key_ = name;
    return true;
  }
  bool parse_error(std::size_t position, const std::string&, const nlohmann::detail::exception& error) {
    ParseFailure failure;
    const auto consumed = text_.substr(0, std::min(position > 0 ? position - 1 : 0, text_.size()));
    failure.line = 1 + static_cast<int>(std::count(consumed.begin(), consumed.end(), '\n'));
    const auto line_start = consumed.rfind('\n');
    failure.column =
        static_cast<int>(consumed.size() - (line_start == std::string_view::npos ? 0 : line_start + 1)) + 1;
    std::string message = error.what();
    // "[json.exception.parse_error.101] parse error at line 1, column 6: syntax error ..." -> "syntax error
    // ..."
    const auto colon = message.find(": ");
    failure.reason = colon == std::string::npos ? message : message.substr(colon + 2);
    failure_ = failure;
    return false;
  }

 private:
  static Node scalar(Node::Kind kind, std::string text) {
    Node node{kind};
    node.text = std::move(text);
    return node;
  }

  struct Open {
    Node* node;
    std::string key;  // dotted path, for duplicate reports
  };

  Node* add(Node node) {
    if (stack_.empty()) {
      out_.root = std::move(node);
      return &out_.root;
    }
    Node& parent = *stack_.back().node;
    if (parent.kind == Node::Kind::List) {
      parent.items.push_back(std::move(node));
      return &parent.items.back();
    }
    if (has_entry(parent, pending_key_)) {
      out_.duplicates.push_back({child_key(stack_.back().key, pending_key_), 0});
    }
    parent.entries.emplace_back(pending_key_, std::move(node));
    return &parent.entries.back().second;
  }

  bool open(Node::Kind kind) {
    std::string key = stack_.empty() ? ""
                      : stack_.back().node->kind == Node::Kind::Map
                          ? child_key(stack_.back().key, pending_key_)
                          : stack_.back().key + "[" + std::to_string(stack_.back().node->items.size()) + "]";
    // The new node's address stays valid while it is open: its parent gains no siblings meanwhile.
    stack_.push_back({add(Node{kind}), std::move(key)});
    return true;
  }

  bool close() {
    stack_.pop_back();
    return true;
  }

  ParsedTree& out_;
  std::optional<ParseFailure>& failure_;
  std::string_view text_;
  std::vector<Open> stack_;
  std::string pending_key_;
};

constexpr int kMaxYamlDepth = 64;

// A YAML node as a Node; what cannot be one is recorded in `failure` (the tree is then not used).
Node from_yaml(const YAML::Node& yaml, const std::string& key, ParsedTree& out,
               std::optional<ParseFailure>& failure, int depth) {
  Node node;
  node.line = yaml.Mark().line + 1;
  if (depth > kMaxYamlDepth) {
    failure = ParseFailure{node.line, yaml.Mark().column + 1, "nested more than 64 levels deep"};
    return node;
  }
  switch (yaml.Type()) {
    case YAML::NodeType::Scalar:
      // yaml-cpp tags quoted scalars "!" and explicit strings "tag:yaml.org,2002:str".
      node.kind =
          yaml.Tag() == "!" || yaml.Tag() == "tag:yaml.org,2002:str" ? Node::Kind::String : Node::Kind::Plain;
      node.text = yaml.Scalar();
      break;
    case YAML::NodeType::Sequence:
      node.kind = Node::Kind::List;
      for (std::size_t i = 0; i < yaml.size(); ++i) {
        node.items.push_back(
            from_yaml(yaml[i], key + "[" + std::to_string(i) + "]", out, failure, depth + 1));
      }
      break;
    case YAML::NodeType::Map:
      node.kind = Node::Kind::Map;
      for (const auto& entry : yaml) {
        if (!entry.first.IsScalar()) {
          failure = ParseFailure{entry.first.Mark().line + 1, entry.first.Mark().column + 1,
                                 "map keys must be plain text"};
          return node;
        }
        const std::string name = entry.first.Scalar();
        if (has_entry(node, name))
          out.duplicates.push_back({child_key(key, name), entry.first.Mark().line + 1});
        node.entries.emplace_back(name,
                                  from_yaml(entry.second, child_key(key, name), out, failure, depth + 1));
      }
      break;
    default:
      node.kind = Node::Kind::Null;
  }
  return node;
}

}  // namespace

const Node* Node::find(std::string_view key) const {
  for (const auto& [name, value] : entries) {
    if (name == key) return &value;
  }
  return nullptr;
}

std::string_view describe(Node::Kind kind) {
  switch (kind) {
    case Node::Kind::Null:
      return "nothing (null)";
    case Node::Kind::Bool:
      return "true/false";
    case Node::Kind::Number:
      return "a number";
    case Node::Kind::String:
      return "a string";
    case Node::Kind::Plain:
      return "a plain value";
    case Node::Kind::List:
      return "a list";
    case Node::Kind::Map:
      return "a map";
  }
  return "?";
}

ParsedFile parse_json(std::string_view text) {
  ParsedTree out;
  std::optional<ParseFailure> failure;
  JsonTreeBuilder builder(out, failure, text);
  nlohmann::json::sax_parse(text.begin(), text.end(), &builder);
  if (failure) return std::unexpected(std::move(*failure));
  return out;
}

ParsedFile parse_yaml(const std::string& text) {
  ParsedTree out;
  std::optional<ParseFailure> failure;
  try {
    const YAML::Node document = YAML::Load(text);
    out.root = from_yaml(document, "", out, failure, 0);
    if (!document.IsDefined() || document.IsNull()) out.root = Node{Node::Kind::Null};
  } catch (const YAML::Exception& error) {
    failure = ParseFailure{error.mark.line + 1, error.mark.column + 1, error.msg};
  }
  if (failure) return std::unexpected(std::move(*failure));
  return out;
}

}  // namespace xqw::config::detail
