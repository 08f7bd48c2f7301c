#!/usr/bin/env python3
"""Generates Swift codecs for Kafka protocol messages from Kafka's own JSON message definitions.

Input: Protocols/kafka/<Name>{Request,Response}.json (Apache Kafka's files, as kafka-python 3.0.12
ships them). Output: Sources/KafkaMessages/<Name>.swift, one file per API holding its
request and its response. Run by `Scripts/generate`; `--check` fails when the output would change.

Each message gets a struct with a field per JSON field (defaults as the JSON says), nested structs
for its arrays, and `init(from:version:)` / `encode(into:version:)` that read and write exactly
the fields present in that version, compact (KIP-482) from its first flexible version on.
Tagged fields are skipped when read and none are written: nothing we serve needs one.
Only the versions in PARSED are generated; ApiVersions advertises from the same table.
"""

import json
import os
import re
import sys

# What we parse per API, (first, last): see ../shared/KAFKA-WIRE.md §7 and Sources/KafkaListener/README.md.
PARSED = {
    "ApiVersions": (18, 0, 4),
    "Metadata": (3, 0, 12),
    "Produce": (0, 3, 9),
    "Fetch": (1, 4, 12),
    "ListOffsets": (2, 1, 7),
    "InitProducerId": (22, 0, 4),
    "CreateTopics": (19, 2, 7),
    "DeleteTopics": (20, 1, 5),
    "FindCoordinator": (10, 0, 4),
    "JoinGroup": (11, 0, 7),
    "Heartbeat": (12, 0, 4),
    "LeaveGroup": (13, 0, 5),
    "SyncGroup": (14, 0, 5),
    "OffsetCommit": (8, 2, 8),
    "OffsetFetch": (9, 1, 7),
    "DescribeGroups": (15, 0, 5),
    "ListGroups": (16, 0, 4),
    "DescribeConfigs": (32, 1, 4),
}

SWIFT_KEYWORDS = {"protocol", "default", "internal", "operator", "as", "is", "in", "repeat", "return", "self",
                  "static", "struct", "class", "case", "switch", "where", "import", "init", "var", "let", "func",
                  "extension", "enum", "public", "private", "true", "false", "nil", "throw", "throws", "try", "type"}

PRIMITIVES = {
    "int8": ("Int8", "0", "readInt8()", "writeInt8"),
    "int16": ("Int16", "0", "readInt16()", "writeInt16"),
    "uint16": ("UInt16", "0", "readUInt16()", "writeUInt16"),
    "int32": ("Int32", "0", "readInt32()", "writeInt32"),
    "int64": ("Int64", "0", "readInt64()", "writeInt64"),
    "float64": ("Double", "0", "readFloat64()", "writeFloat64"),
    "bool": ("Bool", "false", "readBool()", "writeBool"),
    "uuid": ("KafkaUUID", "KafkaUUID.zero", "readUUID()", "writeUUID"),
}


def load(path):
    with open(path) as f:
        text = "\n".join(line for line in f.read().splitlines() if not line.strip().startswith("//"))
    return json.loads(text)


def parse_versions(spec, last):
    """'0+', '3-5', '7', 'none' -> (lo, hi) or None."""
    if spec is None or spec == "none":
        return None
    if spec.endswith("+"):
        return (int(spec[:-1]), last)
    if "-" in spec:
        lo, hi = spec.split("-")
        return (int(lo), int(hi))
    return (int(spec), int(spec))


def condition(rng, lo, hi):
    """A Swift condition on `version` true exactly inside rng, given versions run lo...hi; None = always."""
    a, b = max(rng[0], lo), min(rng[1], hi)
    if a > b:
        return "false"
    parts = []
    if a > lo:
        parts.append(f"version >= {a}")
    if b < hi:
        parts.append(f"version <= {b}")
    return " && ".join(parts) if parts else None


def camel(name):
    s = name[0].lower() + name[1:]
    # Leading acronyms: "ISRNodes" -> "isrNodes"
    m = re.match(r"^([a-z])([A-Z]+)(?=[A-Z][a-z]|$)", s)
    if m:
        s = m.group(1) + m.group(2).lower() + s[m.end():]
    return f"`{s}`" if s in SWIFT_KEYWORDS else s


class Gen:
    def __init__(self, msg, lo, hi):
        self.msg = msg
        self.lo, self.hi = lo, hi
        self.flex = parse_versions(msg.get("flexibleVersions", "none"), 10_000)
        self.common = {s["name"]: s for s in msg.get("commonStructs", [])}
        self.out = []

    def is_tagged(self, field):
        return "taggedVersions" in field

    def live_fields(self, fields):
        result = []
        for f in fields:
            rng = parse_versions(f.get("versions"), self.hi)
            if rng is None or self.is_tagged(f):
                continue
            if max(rng[0], self.lo) > min(rng[1], self.hi):
                continue
            result.append((f, rng))
        return result

    def struct_fields(self, field):
        t = field["type"]
        name = t[2:] if t.startswith("[]") else t
        if "fields" in field:
            return name, field["fields"]
        return name, self.common[name]["fields"]

    def swift_type(self, field):
        t = field["type"]
        nullable = parse_versions(field.get("nullableVersions"), self.hi) is not None
        if t in PRIMITIVES:
            return PRIMITIVES[t][0]
        if t == "string":
            return "String?" if nullable else "String"
        if t == "bytes":
            return "[UInt8]?" if nullable else "[UInt8]"
        if t == "records":
            return "[UInt8]?"
        if t.startswith("[]"):
            inner = t[2:]
            element = PRIMITIVES[inner][0] if inner in PRIMITIVES else ("String" if inner == "string" else inner)
            return f"[{element}]?" if nullable else f"[{element}]"
        return t  # a struct

    def default(self, field):
        t = field["type"]
        d = field.get("default")
        swift = self.swift_type(field)
        if swift.endswith("?"):
            if d is None or d == "null":
                return "nil"
        if t in PRIMITIVES:
            if d is None:
                return PRIMITIVES[t][1]
            if t == "bool":
                return "true" if str(d).lower() == "true" else "false"
            if t == "uuid":
                return "KafkaUUID.zero"
            return str(int(d, 0)) if isinstance(d, str) else str(d)
        if t == "string":
            return json.dumps(d or "")
        if t in ("bytes",):
            return "[]"
        if t.startswith("[]"):
            return "[]"
        return f"{t}()"

    def read_expr(self, field, rng_null):
        t = field["type"]
        nullable = rng_null is not None
        null_cond = condition(rng_null, self.lo, self.hi) if nullable else None
        nullable_now = "true" if (nullable and null_cond is None) else (f"({null_cond})" if nullable else "false")
        if t in PRIMITIVES:
            return f"try reader.{PRIMITIVES[t][2]}"
        if t == "string":
            if nullable:
                return f"try reader.readNullableString(compact: flexible, nullable: {nullable_now})"
            return "try reader.readString(compact: flexible)"
        if t == "bytes":
            if nullable:
                return f"try reader.readNullableBytes(compact: flexible, nullable: {nullable_now})"
            return "try reader.readBytes(compact: flexible)"
        if t == "records":
            return "try reader.readNullableBytes(compact: flexible, nullable: true)"
        if t.startswith("[]"):
            inner = t[2:]
            if inner in PRIMITIVES:
                element = f"try r.{PRIMITIVES[inner][2]}"
            elif inner == "string":
                element = "try r.readString(compact: flexible)"
            else:
                element = f"try {inner}(from: &r, version: version)"
            if nullable:
                return (f"try reader.readNullableArray(compact: flexible, nullable: {nullable_now}) "
                        f"{{ (r: inout KafkaReader) throws(KafkaDecodeError) in {element} }}")
            return (f"try reader.readArray(compact: flexible) "
                    f"{{ (r: inout KafkaReader) throws(KafkaDecodeError) in {element} }}")
        return f"try {t}(from: &reader, version: version)"

    def write_stmt(self, field, name):
        t = field["type"]
        if t in PRIMITIVES:
            return f"writer.{PRIMITIVES[t][3]}({name})"
        if t == "string":
            if self.swift_type(field).endswith("?"):
                return f"writer.writeNullableString({name}, compact: flexible)"
            return f"writer.writeString({name}, compact: flexible)"
        if t == "bytes" or t == "records":
            if self.swift_type(field).endswith("?"):
                return f"writer.writeNullableBytes({name}, compact: flexible)"
            return f"writer.writeBytes({name}, compact: flexible)"
        if t.startswith("[]"):
            inner = t[2:]
            if inner in PRIMITIVES:
                element = f"w.{PRIMITIVES[inner][3]}($0)"
            elif inner == "string":
                element = "w.writeString($0, compact: flexible)"
            else:
                element = "$0.encode(into: &w, version: version)"
            fn = "writeNullableArray" if self.swift_type(field).endswith("?") else "writeArray"
            return f"writer.{fn}({name}, compact: flexible) {{ (w: inout KafkaWriter, element) in {element.replace('$0', 'element')} }}"
        return f"{name}.encode(into: &writer, version: version)"

    def emit_struct(self, name, fields, indent, top=None):
        p = " " * indent
        out = self.out
        live = self.live_fields(fields)
        conformance = "KafkaMessage, Sendable, Equatable" if top else "Sendable, Equatable"
        out.append(f"{p}public struct {name}: {conformance} {{")
        if top:
            key, lo, hi = top
            out.append(f"{p}    public static let apiKey: Int16 = {key}")
            out.append(f"{p}    public static let versions: ClosedRange<Int16> = {lo}...{hi}")
            if self.flex:
                out.append(f"{p}    public static func isFlexible(_ version: Int16) -> Bool {{ version >= {self.flex[0]} }}")
            else:
                out.append(f"{p}    public static func isFlexible(_ version: Int16) -> Bool {{ false }}")
            out.append("")
        for f, rng in live:
            about = f.get("about")
            if about:
                out.append(f"{p}    /// {about} (versions {f['versions']})")
            out.append(f"{p}    public var {camel(f['name'])}: {self.swift_type(f)} = {self.default(f)}")
        # Nested structs
        nested_done = set()
        for f, rng in live:
            t = f["type"]
            base = t[2:] if t.startswith("[]") else t
            if base in PRIMITIVES or base in ("string", "bytes", "records"):
                continue
            if base in nested_done:
                continue
            nested_done.add(base)
            sname, sfields = self.struct_fields(f)
            if sname in self.common and "fields" not in f:
                continue  # emitted once at top level
            out.append("")
            self.emit_struct(sname, sfields, indent + 4)
        out.append("")
        out.append(f"{p}    public init() {{}}")
        out.append("")
        top_name = self.top_name
        flex_expr = f"{top_name}.isFlexible(version)"
        out.append(f"{p}    public init(from reader: inout KafkaReader, version: Int16) throws(KafkaDecodeError) {{")
        out.append(f"{p}        let flexible = {flex_expr}")
        for f, rng in live:
            cond = condition(rng, self.lo, self.hi)
            rng_null = parse_versions(f.get("nullableVersions"), self.hi)
            stmt = f"{camel(f['name'])} = {self.read_expr(f, rng_null)}"
            if cond:
                out.append(f"{p}        if {cond} {{ {stmt} }}")
            else:
                out.append(f"{p}        {stmt}")
        out.append(f"{p}        if flexible {{ try reader.skipTaggedFields() }}")
        out.append(f"{p}    }}")
        out.append("")
        out.append(f"{p}    public func encode(into writer: inout KafkaWriter, version: Int16) {{")
        out.append(f"{p}        let flexible = {flex_expr}")
        for f, rng in live:
            cond = condition(rng, self.lo, self.hi)
            stmt = self.write_stmt(f, camel(f["name"]))
            if cond:
                out.append(f"{p}        if {cond} {{ {stmt} }}")
            else:
                out.append(f"{p}        {stmt}")
        out.append(f"{p}        if flexible {{ writer.writeEmptyTaggedFields() }}")
        out.append(f"{p}    }}")
        out.append(f"{p}}}")

    def generate(self, top):
        self.top_name = self.msg["name"]
        self.emit_struct(self.msg["name"], self.msg["fields"], 0, top=top)
        used_common = [s for s in self.msg.get("commonStructs", []) if self.uses(s["name"])]
        for s in used_common:
            self.out.append("")
            self.out.append(f"extension {self.top_name} {{")
            self.emit_struct(s["name"], s["fields"], 4)
            self.out.append("}")
        return self.out

    def uses(self, name):
        def walk(fields):
            for f, _ in self.live_fields(fields):
                t = f["type"]
                base = t[2:] if t.startswith("[]") else t
                if base == name:
                    return True
                if "fields" in f and walk(f["fields"]):
                    return True
            return False
        return walk(self.msg["fields"])


def render(api, key, lo, hi, protocols):
    lines = [
        f"// Generated by Scripts/generate from Protocols/kafka/{api}Request.json and {api}Response.json",
        "// (Apache Kafka's message definitions). Do not edit.",
        "",
        "public import KafkaWire",
        "",
    ]
    for kind in ("Request", "Response"):
        msg = load(os.path.join(protocols, f"{api}{kind}.json"))
        body = Gen(msg, lo, hi).generate((key, lo, hi))
        lines.extend(body)
        lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"


def main():
    check = "--check" in sys.argv
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
    protocols = os.path.join(root, "Protocols", "kafka")
    output = os.path.join(root, "Sources", "KafkaMessages")
    os.makedirs(output, exist_ok=True)
    stale = []
    for api, (key, lo, hi) in PARSED.items():
        path = os.path.join(output, f"{api}.swift")
        text = render(api, key, lo, hi, protocols)
        old = open(path).read() if os.path.exists(path) else None
        if old != text:
            stale.append(path)
            if not check:
                with open(path, "w") as f:
                    f.write(text)
    table = ["// Generated by Scripts/generate from Scripts/lib/kafka_codegen.py's table. Do not edit.", "",
             "/// The versions of each API this listener parses, by API key.",
             "public enum KafkaParsedVersions {",
             "    public static let byKey: [Int16: ClosedRange<Int16>] = ["]
    for api, (key, lo, hi) in sorted(PARSED.items(), key=lambda kv: kv[1][0]):
        table.append(f"        {key}: {lo}...{hi},  // {api}")
    table += ["    ]", "}", ""]
    path = os.path.join(output, "ParsedVersions.swift")
    text = "\n".join(table)
    old = open(path).read() if os.path.exists(path) else None
    if old != text:
        stale.append(path)
        if not check:
            with open(path, "w") as f:
                f.write(text)
    if check and stale:
        print("stale Kafka codecs (run Scripts/generate):", *stale, sep="\n  ", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
