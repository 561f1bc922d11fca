"""The metric and label names a PromQL expression reads, for checking a dashboard and alert rules against
what Prometheus really scraped (test_prometheus.py). A small tokenizer, not a full parser: enough for
selectors, functions, aggregations with by/without, vector matching with on/ignoring/group_*, ranges and
subqueries, and Grafana's $variables.
"""
import re
from dataclasses import dataclass, field

_TOKEN = re.compile(r"""
    (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)
  | (?P<duration>\d+(?:ms|[smhdwy])(?:\d+(?:ms|[smhdwy]))*\b)
  | (?P<number>0x[0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<variable>\$\{[^}]*\}|\$\w+)
  | (?P<ident>[a-zA-Z_:][a-zA-Z0-9_:]*)
  | (?P<op>=~|!~|!=|==|>=|<=|[{}()\[\],=<>+\-*/%^@:])
  | (?P<space>\s+)
""", re.VERBOSE)

_GROUPING = {"by", "without", "on", "ignoring", "group_left", "group_right"}
_KEYWORDS = _GROUPING | {"and", "or", "unless", "bool", "offset", "atan2", "inf", "nan"}
_MATCHERS = {"=", "!=", "=~", "!~"}
_AGGREGATIONS = {"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values", "bottomk",
                 "topk", "quantile", "limitk", "limit_ratio"}

# Grafana's built-in interval variables, and what the tests put in their place to run a panel's query.
GRAFANA_INTERVALS = {"$__rate_interval": "1m", "$__interval": "15s", "$__range": "5m",
                     "${__rate_interval}": "1m", "${__interval}": "15s", "${__range}": "5m"}


@dataclass
class Names:
    """What one expression reads: metric names, the labels its selectors match on (metric, label), and
    the labels it groups or matches by (by, without, on, ignoring, group_left, group_right)."""
    metrics: set = field(default_factory=set)
    selector_labels: set = field(default_factory=set)
    grouping_labels: set = field(default_factory=set)


class PromQLSyntaxError(ValueError):
    pass


def _tokens(expr):
    position = 0
    out = []
    while position < len(expr):
        match = _TOKEN.match(expr, position)
        if not match:
            raise PromQLSyntaxError(f"cannot read {expr[position:position + 20]!r} in {expr!r}")
        position = match.end()
        if match.lastgroup != "space":
            out.append((match.lastgroup, match.group()))
    return out


def _unquote(text):
    return text[1:-1]


def names(expr):
    """The Names an expression (a Grafana target or an alert's expr) reads."""
    for variable, value in GRAFANA_INTERVALS.items():
        expr = expr.replace(variable, value)
    found = Names()
    tokens = _tokens(expr)
    i = 0
    brackets = 0
    while i < len(tokens):
        kind, text = tokens[i]
        following = tokens[i + 1][1] if i + 1 < len(tokens) else None
        if text == "[":
            brackets += 1
        elif text == "]":
            brackets -= 1
        elif brackets:
            pass  # a range or subquery: durations and steps only
        elif kind == "ident" and text.lower() in _GROUPING and following == "(":
            i += 2
            while i < len(tokens) and tokens[i][1] != ")":
                if tokens[i][0] == "ident":
                    found.grouping_labels.add(tokens[i][1])
                i += 1
        elif kind == "ident" and (following == "(" or (text.lower() in _AGGREGATIONS and following
                                                        and following.lower() in ("by", "without"))):
            pass  # a function, or an aggregation (`sum(...) by (l)` or `sum by (l) (...)`)
        elif kind == "ident" and text.lower() in _KEYWORDS:
            pass
        elif kind == "ident":
            found.metrics.add(text)
            if following == "{":
                i = _selector(tokens, i + 1, text, found)
        elif text == "{":
            i = _selector(tokens, i, None, found)
        i += 1
    if brackets:
        raise PromQLSyntaxError(f"unbalanced [ ] in {expr!r}")
    return found


def _selector(tokens, i, metric, found):
    """Reads `{label op "value", ...}` from tokens[i] == "{"; returns the index of the closing "}"."""
    matchers = []
    i += 1
    while i < len(tokens) and tokens[i][1] != "}":
        if tokens[i][0] == "ident" and i + 2 < len(tokens) and tokens[i + 1][1] in _MATCHERS:
            label, operator, value = tokens[i][1], tokens[i + 1][1], tokens[i + 2]
            if value[0] != "string":
                raise PromQLSyntaxError(f"label {label} is not matched against a string")
            matchers.append((label, operator, _unquote(value[1])))
            i += 3
        elif tokens[i][1] == ",":
            i += 1
        else:
            raise PromQLSyntaxError(f"unexpected {tokens[i][1]!r} in a selector")
    if i >= len(tokens):
        raise PromQLSyntaxError("a selector is not closed")
    for label, operator, value in matchers:
        if label == "__name__" and operator == "=":
            metric = value
            found.metrics.add(value)
    for label, operator, value in matchers:
        if label != "__name__":
            found.selector_labels.add((metric, label))
    return i


def grafana_variable_names(query):
    """Names read by a Grafana Prometheus variable query: label_values(metric, label) or a PromQL
    query_result(...)/metrics(...) is read as PromQL."""
    match = re.fullmatch(r"\s*label_values\(\s*(.*?)\s*,\s*([a-zA-Z_]\w*)\s*\)\s*", query)
    if match:
        found = names(match.group(1))
        found.grouping_labels.add(match.group(2))
        return found
    match = re.fullmatch(r"\s*label_names\(\s*\)\s*", query)
    if match:
        return Names()
    match = re.fullmatch(r"\s*query_result\((.*)\)\s*", query)
    return names(match.group(1) if match else query)


def runnable(expr, variables):
    """The expression with Grafana's variables replaced (intervals by fixed ranges, `variables` by their
    values), as Prometheus' query API takes it."""
    for variable, value in GRAFANA_INTERVALS.items():
        expr = expr.replace(variable, value)
    for name, value in variables.items():
        expr = expr.replace("${" + name + "}", value).replace("$" + name, value)
    return expr
