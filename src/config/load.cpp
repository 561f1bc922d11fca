// config: finds the files of a config root, parses them, resolves server references, checks the whole.
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <ostream>
#include <set>
#include <sstream>

#include "config/config.hpp"
#include "config/schema.hpp"

namespace xqw::config {
namespace {

using detail::Findings;
using detail::Node;
using detail::QueueDraft;
using detail::Reader;
using detail::ServerTable;

namespace fs = std::filesystem;

enum class Format { Json, Yaml };

struct SourceFile {
  fs::path path;
  Format format;
};

std::optional<Format> format_of(const fs::path& path) {
  const auto extension = path.extension();
  if (extension == ".json") return Format::Json;
  if (extension == ".yaml" || extension == ".yml") return Format::Yaml;
  return std::nullopt;
}

// DIR/<stem>.yaml, .yml or .json; at most one of them may exist.
std::optional<SourceFile> find_one(const fs::path& dir, const std::string& stem, Findings& findings) {
  std::vector<SourceFile> found;
  for (const char* extension : {".yaml", ".yml", ".json"}) {
    const fs::path candidate = dir / (stem + extension);
    std::error_code ec;
    if (fs::is_regular_file(candidate, ec)) found.push_back({candidate, *format_of(candidate)});
  }
  if (found.size() > 1) {
    std::string names;
    for (const auto& file : found) names += (names.empty() ? "" : " and ") + file.path.filename().string();
    findings.errors.push_back({(dir / stem).string() + ".*", "", names + " both exist; keep one"});
  }
  if (found.empty()) return std::nullopt;
  return found.front();
}

std::optional<Node> read_tree(const SourceFile& file, Findings& findings) {
  std::ifstream in(file.path, std::ios::binary);
  if (!in) {
    findings.errors.push_back({file.path.string(), "", "cannot read the file"});
    return std::nullopt;
  }
  std::ostringstream content;
  content << in.rdbuf();
  auto parsed =
      file.format == Format::Json ? detail::parse_json(content.str()) : detail::parse_yaml(content.str());
  if (!parsed) {
    const auto& failure = parsed.error();
    findings.errors.push_back({file.path.string(), "",
                               std::string("malformed ") + (file.format == Format::Json ? "JSON" : "YAML") +
                                   " at line " + std::to_string(failure.line) + ", column " +
                                   std::to_string(failure.column) + ": " + failure.reason,
                               failure.line});
    return std::nullopt;
  }
  for (const auto& duplicate : parsed->duplicates) {
    findings.errors.push_back(
        {file.path.string(), duplicate.key, "duplicate key (only the first is used)", duplicate.line});
  }
  return std::move(parsed->root);
}

// The file's own docker_socket when it names one (read_manager_native has read and checked it).
std::optional<std::string> configured_docker_socket(const std::optional<SourceFile>& file,
                                                    const std::optional<Node>& root,
                                                    const ManagerConfig& manager) {
  if (!file || file->format != Format::Yaml || !root || !root->find("docker_socket")) return std::nullopt;
  return manager.docker_socket;
}

void load_manager(const fs::path& dir, const LoadOptions& options, ManagerConfig& manager,
                  Findings& findings) {
  const auto file = find_one(dir, "xqwatcher", findings);  // none: every default, as upstream
  const auto root = file ? read_tree(*file, findings) : std::nullopt;
  if (root) {
    Reader reader(file->path, findings, options.env);
    if (file->format == Format::Json) {
      detail::read_manager_upstream(reader, *root, manager);
    } else {
      detail::read_manager_native(reader, *root, manager);
    }
  }
  auto socket = resolve_engine_socket(options.env, configured_docker_socket(file, root, manager));
  manager.docker_socket = std::move(socket.path);
  if (socket.warning) findings.warnings.push_back(std::move(*socket.warning));
  // A registry_auth_file the file names but that is unusable was reported there: no fallback to
  // DOCKER_CONFIG.
  const bool named = file && file->format == Format::Yaml && root && root->find("registry_auth_file");
  if (!named || !manager.registry_auth_file.empty()) {
    auto auth = resolve_registry_auth_file(
        options.env, named ? std::optional<std::string>(manager.registry_auth_file) : std::nullopt);
    manager.registry_auth_file = std::move(auth.path);
    for (auto& error : auth.errors) findings.errors.push_back(std::move(error));
    for (auto& warning : auth.warnings) findings.warnings.push_back(std::move(warning));
  }
  const detail::ManagerFile read{.path = file ? file->path : fs::path(),
                                 .root = root ? &*root : nullptr,
                                 .upstream = file && file->format == Format::Json};
  detail::apply_xqwatcher_environment(options.env, options.env_names, read, manager, findings);
}

ServerTable load_servers(const fs::path& dir, const EnvLookup& env, Findings& findings) {
  ServerTable servers;
  const auto file = find_one(dir, "xqueue_servers", findings);
  if (!file) return servers;
  const auto root = read_tree(*file, findings);
  if (!root) return servers;
  Reader reader(file->path, findings, env);
  if (file->format == Format::Json) {
    detail::read_servers_upstream(reader, *root, servers);
  } else {
    detail::read_servers_native(reader, *root, servers);
  }
  return servers;
}

std::vector<SourceFile> queue_files(const fs::path& confd, Findings& findings) {
  std::vector<SourceFile> files;
  std::error_code ec;
  if (!fs::is_directory(confd, ec)) {
    findings.errors.push_back(
        {confd.string(), "", "not found: queues are read from conf.d/*.yaml, *.yml and *.json"});
    return files;
  }
  for (const auto& entry : fs::directory_iterator(confd, ec)) {
    const auto name = entry.path().filename().string();
    const auto format = format_of(entry.path());
    if (!format || name.front() == '.' || !entry.is_regular_file(ec)) continue;
    // Upstream's own side files that older layouts kept in conf.d.
    if (name == "logging.json" || name == "codejail.json") {
      findings.warnings.push_back({entry.path().string(), "", "ignored: " + name + " is not a queue file"});
      continue;
    }
    files.push_back({entry.path(), *format});
  }
  std::sort(files.begin(), files.end(), [](const auto& a, const auto& b) { return a.path < b.path; });
  return files;
}

std::vector<QueueDraft> load_queue_drafts(const fs::path& dir, const EnvLookup& env,
                                          const ManagerConfig& manager, Findings& findings) {
  std::vector<QueueDraft> drafts;
  for (const auto& file : queue_files(dir / "conf.d", findings)) {
    const auto root = read_tree(file, findings);
    if (!root) continue;
    Reader reader(file.path, findings, env);
    if (file.format == Format::Json) {
      detail::read_queues_upstream(reader, *root, manager, drafts);
    } else {
      detail::read_queues_native(reader, *root, manager, drafts);
    }
  }
  return drafts;
}

std::string unknown_server_reason(const QueueDraft& draft, const ServerTable& servers) {
  if (servers.empty()) {
    return "unknown server '" + draft.server_ref +
           "': there is no xqueue_servers.yaml (or .json) defining it";
  }
  std::vector<std::string_view> names;
  std::string listed;
  for (const auto& [name, server] : servers) {
    names.push_back(name);
    listed += (listed.empty() ? "" : ", ") + name;
  }
  if (draft.implicit_server) {
    return "no server given and xqueue_servers has no 'default' (name one of: " + listed + ")";
  }
  std::string reason = "unknown server '" + draft.server_ref + "'";
  if (const auto suggestion = detail::closest(draft.server_ref, names); !suggestion.empty()) {
    reason += " (did you mean '" + suggestion + "'?)";
  }
  return reason + "; xqueue_servers defines: " + listed;
}

std::vector<QueueConfig> resolve_queues(std::vector<QueueDraft> drafts, const ServerTable& servers,
                                        Findings& findings) {
  std::vector<QueueConfig> queues;
  std::map<std::string, const QueueDraft*> by_name;
  for (auto& draft : drafts) {
    if (!draft.server_ref.empty()) {
      const auto server = servers.find(draft.server_ref);
      if (server == servers.end()) {
        findings.errors.push_back(
            {draft.queue.source, draft.server_key, unknown_server_reason(draft, servers), draft.server_line});
      } else {
        draft.queue.server = server->second;
      }
    }
    const auto [existing, inserted] = by_name.emplace(draft.queue.name, &draft);
    if (!inserted) {
      findings.errors.push_back({draft.queue.source, draft.key,
                                 "duplicate queue '" + draft.queue.name + "': already defined in " +
                                     existing->second->queue.source + " (" + existing->second->key + ")",
                                 draft.line});
    }
  }
  for (auto& draft : drafts) {
    // The LMS stores integer points: a fractional score is acknowledged, then lost (retried, then failed).
    if (draft.queue.server.api == ServerApi::Lms && !draft.queue.points) {
      findings.warnings.push_back(
          {draft.queue.source, detail::join_key(draft.key, "points"),
           "queue '" + draft.queue.name +
               "' posts to an LMS (api: lms), which stores only whole points: a "
               "fractional score would never reach the student; set points (the problem's points_possible, "
               "usually 1) to post rounded points",
           draft.line});
    }
    queues.push_back(std::move(draft.queue));
  }
  return queues;
}

}  // namespace

std::string Problem::to_string() const {
  std::string out = file;
  if (line > 0) out += ":" + std::to_string(line);
  if (!key.empty()) out += ": " + key;
  return out + ": " + reason;
}

EngineSocket resolve_engine_socket(const EnvLookup& env, const std::optional<std::string>& configured) {
  if (configured) return {.path = *configured, .warning = std::nullopt};
  const auto docker_host = env ? env("DOCKER_HOST") : std::nullopt;
  auto socket = docker::socket_from_docker_host(docker_host.value_or(""));
  if (socket) return {.path = std::move(*socket), .warning = std::nullopt};
  const std::string fallback(docker::kDefaultSocket);
  return {.path = fallback,
          .warning =
              Problem{.file = "environment",
                      .key = "DOCKER_HOST",
                      .reason = "'" + socket.error().value + "' is not supported: " + socket.error().reason +
                                "; using " + fallback + " (or set docker_socket in xqwatcher.yaml)"}};
}

RegistryAuthFile resolve_registry_auth_file(const EnvLookup& env,
                                            const std::optional<std::string>& configured) {
  RegistryAuthFile out;
  if (configured) {
    out.path = *configured;
  } else {
    const auto dir = env ? env("DOCKER_CONFIG") : std::nullopt;
    if (!dir || dir->empty()) return out;
    const auto path = fs::path(*dir) / "config.json";
    std::error_code ec;
    if (!fs::is_regular_file(path, ec)) {
      out.warnings.push_back({.file = "environment",
                              .key = "DOCKER_CONFIG",
                              .reason = path.string() + " is not a file; image pulls are anonymous"});
      return out;
    }
    out.path = path.string();
  }
  const auto auths = docker::load_docker_config(out.path);
  if (!auths) {
    for (const auto& problem : auths.error()) {
      out.errors.push_back({.file = out.path, .key = problem.key, .reason = problem.reason});
    }
  } else if (auths->credentials.empty()) {
    out.warnings.push_back(
        {.file = out.path, .key = "auths", .reason = "no registry credentials; image pulls are anonymous"});
  }
  return out;
}

EnvLookup process_environment() {
  return [](const std::string& name) -> std::optional<std::string> {
    if (const char* value = std::getenv(name.c_str())) return std::string(value);
    return std::nullopt;
  };
}

EnvNames process_environment_names() {
  return [](std::string_view prefix) {
    std::vector<std::string> names;
    for (char** entry = environ; entry && *entry; ++entry) {
      const std::string_view variable(*entry);
      const auto name = variable.substr(0, variable.find('='));
      if (name.starts_with(prefix)) names.emplace_back(name);
    }
    return names;
  };
}

LoadResult load_config_root(const fs::path& dir, const LoadOptions& options) {
  LoadResult result;
  Findings findings;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    result.errors.push_back({dir.string(), "", "the config root does not exist or is not a directory"});
    return result;
  }
  Config config;
  load_manager(dir, options, config.manager, findings);
  const fs::path logging = dir / "logging.json";
  if (fs::exists(logging, ec)) {
    findings.warnings.push_back(
        {logging.string(), "", "ignored: Python logging settings do not apply to this watcher"});
  }
  const auto servers = load_servers(dir, options.env, findings);
  auto drafts = load_queue_drafts(dir, options.env, config.manager, findings);
  config.queues = resolve_queues(std::move(drafts), servers, findings);
  detail::check_environment_host_grader_root(config.manager, config.queues, findings);
  if (config.queues.empty() && fs::is_directory(dir / "conf.d", ec)) {
    findings.warnings.push_back({(dir / "conf.d").string(), "", "no queues configured"});
  }
  result.errors = std::move(findings.errors);
  result.warnings = std::move(findings.warnings);
  if (result.errors.empty()) result.config = std::move(config);
  return result;
}

std::vector<Problem> unknown_runtimes(const Config& config, const std::vector<std::string>& offered) {
  std::string offered_list;
  for (const auto& name : offered) offered_list += (offered_list.empty() ? "" : ", ") + name;
  std::vector<Problem> problems;
  for (const auto& queue : config.queues) {
    const auto& runtime = queue.limits.runtime;
    if (runtime.empty() || std::find(offered.begin(), offered.end(), runtime) != offered.end()) continue;
    problems.push_back({queue.source, "queues." + queue.name + ".limits.runtime",
                        "runtime '" + runtime + "' is not registered with the Docker engine at " +
                            config.manager.docker_socket + " (it offers: " + offered_list +
                            "); register it in the engine's daemon.json \"runtimes\" or remove it"});
  }
  return problems;
}

namespace {

// Adds the runtime findings that need the engine: errors when it answers, a warning when it does not.
void check_runtimes_with_engine(const Config& config, const RuntimeLookup& lookup, LoadResult& result) {
  const bool any = std::any_of(config.queues.begin(), config.queues.end(),
                               [](const QueueConfig& queue) { return !queue.limits.runtime.empty(); });
  if (!any || !lookup) return;
  const auto engine = lookup(config.manager.docker_socket);
  if (!engine) {
    result.warnings.push_back(
        {config.manager.docker_socket, "",
         "runtimes not checked: the Docker engine does not answer (" + engine.error().reason + ")"});
    return;
  }
  for (auto& problem : unknown_runtimes(config, *engine)) result.errors.push_back(std::move(problem));
}

// A queue's effective limits as check-config lists them: "memory 256 MiB, cpus 1, ..., network false";
// text limits only when set.
std::string limits_line(const Limits& limits) {
  std::string line;
  for (const auto& field : limit_fields()) {
    const std::string value = show_limit(limits, field);
    if (value.empty()) continue;
    line += (line.empty() ? "" : ", ") + std::string(field.key) + " " + value;
  }
  return line;
}

}  // namespace

int check_config(const fs::path& dir, std::ostream& out, const LoadOptions& options) {
  auto result = load_config_root(dir, options);
  if (result.ok()) check_runtimes_with_engine(*result.config, options.runtimes, result);
  for (const auto& problem : result.errors) out << "error: " << problem.to_string() << "\n";
  for (const auto& problem : result.warnings) out << "warning: " << problem.to_string() << "\n";
  if (!result.ok()) {
    out << dir.string() << ": invalid configuration, " << result.errors.size()
        << (result.errors.size() == 1 ? " error\n" : " errors\n");
    return 1;
  }
  int connections = 0;
  for (const auto& queue : result.config->queues) connections += queue.connections;
  out << dir.string() << ": configuration OK, " << result.config->queues.size()
      << (result.config->queues.size() == 1 ? " queue, " : " queues, ") << connections
      << (connections == 1 ? " connection\n" : " connections\n");
  for (const auto& queue : result.config->queues)
    out << "  " << queue.name << ": " << limits_line(queue.limits) << "\n";
  if (const auto& file = result.config->manager.registry_auth_file; !file.empty()) {
    std::string registries;
    if (const auto auths = docker::load_docker_config(file)) {
      for (const auto& credential : auths->credentials)
        registries += (registries.empty() ? "" : ", ") + credential.registry;
    }
    out << "  image pulls: registry credentials from " << file << " for "
        << (registries.empty() ? "no registry" : registries) << "\n";
  }
  return 0;
}

}  // namespace xqw::config
