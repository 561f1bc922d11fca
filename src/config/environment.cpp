// config (internal): the Python watcher's XQWATCHER_* environment settings. Each variable present is
// mapped onto this watcher's setting or reported (error or warning naming it and what to set instead);
// none is ignored silently. Files win over the environment, the environment over built-in defaults,
// as the Python watcher's KWARGS win over its XQWATCHER_GRADER_* defaults.
#include <algorithm>

#include "config/schema.hpp"
#include "text/text.hpp"

using xqw::text::ascii_lower;

namespace xqw::config::detail {
namespace {

constexpr std::string_view kPrefix = "XQWATCHER_";
constexpr std::string_view kWhere = "environment";

// The Python watcher's spelling of a flag: 1/true/yes or 0/false/no, any case.
std::optional<bool> read_flag(Reader& reader, const Node& value, const std::string& variable) {
  const auto text = ascii_lower(value.text);
  if (text == "1" || text == "true" || text == "yes") return true;
  if (text == "0" || text == "false" || text == "no") return false;
  reader.error(value, variable, "expected 1, true, yes, 0, false or no, got '" + value.text + "'");
  return std::nullopt;
}

void read_interval(Reader& reader, const Node& value, const std::string& variable,
                   std::chrono::milliseconds& out) {
  const auto parsed = reader.duration(value, variable);
  if (!parsed) return;
  if (parsed->count() <= 0) return reader.error(value, variable, "must be more than 0 seconds");
  out = *parsed;
}

// "username:password", as the Python watcher splits it.
void read_basic_auth(Reader& reader, const Node& value, const std::string& variable, ManagerConfig& manager) {
  const auto colon = value.text.find(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == value.text.size()) {
    return reader.error(value, variable, "expected username:password, both not empty");
  }
  manager.http_basic_auth = std::make_pair(value.text.substr(0, colon), value.text.substr(colon + 1));
}

void read_backend(Reader& reader, const Node& value, const std::string& variable) {
  if (value.text == "kubernetes") {
    reader.warn(value, variable,
                "grading runs in containers on the Docker engine this watcher is connected to, not as "
                "Kubernetes Jobs");
  } else if (value.text != "docker") {
    reader.error(
        value, variable,
        "unsupported backend '" + value.text + "' (the Python watcher accepts kubernetes or docker)");
  }
}

using Apply = void (*)(Reader& reader, const Node& value, const std::string& variable,
                       ManagerConfig& manager);

// One XQWATCHER_ variable: the setting it maps to, where a file would set that setting (then the file
// wins), and how its value is read. `apply` reports what it cannot map.
struct Mapping {
  std::string_view variable;
  std::string_view native_key;    // dotted key in xqwatcher.yaml; empty: none
  std::string_view upstream_key;  // key in xqwatcher.json; empty: none
  Apply apply;
};

const Mapping kMappings[] = {
    {"XQWATCHER_POLL_INTERVAL", "poll_interval", "POLL_INTERVAL",
     [](Reader& r, const Node& v, const std::string& k, ManagerConfig& m) {
       read_interval(r, v, k, m.poll_interval);
     }},
    {"XQWATCHER_LOGIN_POLL_INTERVAL", "login_poll_interval", "LOGIN_POLL_INTERVAL",
     [](Reader& r, const Node& v, const std::string& k, ManagerConfig& m) {
       read_interval(r, v, k, m.login_poll_interval);
     }},
    {"XQWATCHER_REQUESTS_TIMEOUT", "requests_timeout", "REQUESTS_TIMEOUT",
     [](Reader& r, const Node& v, const std::string& k, ManagerConfig& m) {
       read_interval(r, v, k, m.requests_timeout);
     }},
    {"XQWATCHER_FOLLOW_CLIENT_REDIRECTS", "follow_client_redirects", "FOLLOW_CLIENT_REDIRECTS",
     [](Reader& r, const Node& v, const std::string& k, ManagerConfig& m) {
       if (const auto flag = read_flag(r, v, k)) m.follow_client_redirects = *flag;
     }},
    {"XQWATCHER_VERIFY_TLS", "verify_tls", "",
     [](Reader& r, const Node& v, const std::string& k, ManagerConfig& m) {
       if (const auto flag = read_flag(r, v, k)) m.verify_tls = *flag;
       if (!m.verify_tls) r.warn(v, k, "TLS certificates are not verified; never do this in production");
     }},
    {"XQWATCHER_HTTP_BASIC_AUTH", "http_basic_auth", "HTTP_BASIC_AUTH",
     [](Reader& r, const Node& v, const std::string& k, ManagerConfig& m) { read_basic_auth(r, v, k, m); }},
    {"XQWATCHER_GRADER_CPU_LIMIT", "defaults.limits.cpus", "",
     [](Reader& r, const Node& v, const std::string& k, ManagerConfig& m) {
       read_limit(r, v, k, "cpus", m.default_limits, &m.bounds);
     }},
    {"XQWATCHER_GRADER_MEMORY_LIMIT", "defaults.limits.memory", "",
     [](Reader& r, const Node& v, const std::string& k, ManagerConfig& m) {
       read_limit(r, v, k, "memory", m.default_limits, &m.bounds);
     }},
    {"XQWATCHER_GRADER_TIMEOUT", "defaults.limits.timeout", "",
     [](Reader& r, const Node& v, const std::string& k, ManagerConfig& m) {
       read_limit(r, v, k, "timeout", m.default_limits, &m.bounds);
     }},
    {"XQWATCHER_SUBMISSION_SIZE_LIMIT", "defaults.limits.submission", "",
     [](Reader& r, const Node& v, const std::string& k, ManagerConfig& m) {
       read_limit(r, v, k, "submission", m.default_limits, &m.bounds);
     }},
    {"XQWATCHER_DOCKER_HOST_GRADER_ROOT", "", "",
     [](Reader& r, const Node& v, const std::string& k, ManagerConfig& m) {
       if (auto path = read_host_path(r, v, k)) m.default_docker_host_grader_root = *path;
     }},
    {"XQWATCHER_GRADER_BACKEND", "", "",
     [](Reader& r, const Node& v, const std::string& k, ManagerConfig&) { read_backend(r, v, k); }},
    {"XQWATCHER_GRADER_NAMESPACE", "", "",
     [](Reader& r, const Node& v, const std::string& k, ManagerConfig&) {
       r.warn(v, k, "ignored: Kubernetes namespaces do not apply to the Docker engine");
     }},
    {"XQWATCHER_POLL_TIME", "", "",
     [](Reader& r, const Node& v, const std::string& k, ManagerConfig&) {
       r.warn(v, k,
              "no effect: this watcher's loops are checked by /healthz (metrics_port in xqwatcher.yaml)");
     }},
    {"XQWATCHER_LOG_LEVEL", "", "",
     [](Reader& r, const Node& v, const std::string& k, ManagerConfig&) {
       r.warn(v, k, "not read: pass --log-level " + ascii_lower(v.text) + " (the chart's watcher.logLevel)");
     }},
};

const Mapping* mapping_for(std::string_view variable) {
  for (const auto& mapping : kMappings) {
    if (mapping.variable == variable) return &mapping;
  }
  return nullptr;
}

// The node at a dotted key ("defaults.limits.cpus") of a manager file, if the file sets it.
const Node* find_dotted(const Node* root, std::string_view dotted) {
  while (root && root->kind == Node::Kind::Map && !dotted.empty()) {
    const auto dot = dotted.find('.');
    root = root->find(dotted.substr(0, dot));
    dotted = dot == std::string_view::npos ? std::string_view() : dotted.substr(dot + 1);
  }
  return dotted.empty() ? root : nullptr;
}

void report_unknown(Reader& reader, const Node& value, const std::string& variable) {
  std::vector<std::string_view> known;
  for (const auto& mapping : kMappings) known.push_back(mapping.variable);
  std::string reason = "unknown XQWATCHER_ variable: not a setting of this watcher";
  if (const auto suggestion = closest(variable, known); !suggestion.empty()) {
    reason += " (did you mean " + suggestion + "?)";
  }
  reader.warn(value, variable, reason + "; settings live in xqwatcher.yaml and conf.d (docs/operators.md)");
}

}  // namespace

void apply_xqwatcher_environment(const EnvLookup& env, const EnvNames& names, const ManagerFile& file,
                                 ManagerConfig& manager, Findings& findings) {
  if (!names) return;
  Reader reader(std::string(kWhere), findings, env);
  auto variables = names(kPrefix);
  std::sort(variables.begin(), variables.end());  // findings in a stable order
  for (const auto& variable : variables) {
    const auto value = env(variable);
    if (!value) continue;
    // Plain: read as written (numbers, sizes, durations), like an unquoted YAML scalar.
    const Node node{.kind = Node::Kind::Plain, .text = *value};
    const Mapping* mapping = mapping_for(variable);
    if (!mapping) {
      report_unknown(reader, node, variable);
      continue;
    }
    if (value->empty()) {
      reader.warn(node, variable, "set but empty: ignored, as the Python watcher does");
      continue;
    }
    const std::string_view file_key = file.upstream ? mapping->upstream_key : mapping->native_key;
    if (!file_key.empty() && find_dotted(file.root, file_key)) {
      reader.warn(node, variable,
                  "ignored: " + file.path.filename().string() + " sets " + std::string(file_key) +
                      " (the files win over XQWATCHER_ variables)");
      continue;
    }
    mapping->apply(reader, node, variable, manager);
  }
}

void check_environment_host_grader_root(const ManagerConfig& manager, const std::vector<QueueConfig>& queues,
                                        Findings& findings) {
  const auto& host_root = manager.default_docker_host_grader_root;
  if (host_root.empty()) return;
  const QueueConfig* first = nullptr;
  for (const auto& queue : queues) {
    if (queue.docker_host_grader_root != host_root) continue;
    if (!first) {
      first = &queue;
    } else if (queue.grader_root != first->grader_root) {
      findings.errors.push_back(
          {std::string(kWhere), "XQWATCHER_DOCKER_HOST_GRADER_ROOT",
           "is the engine's view of every queue's grader_root, but queues " + first->name + " (" +
               first->grader_root.string() + ") and " + queue.name + " (" + queue.grader_root.string() +
               ") have different ones: set docker_host_grader_root on each queue instead"});
      return;
    }
  }
}

}  // namespace xqw::config::detail
