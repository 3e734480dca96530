#!/usr/bin/env python3
"""Validate XML messages against the vendored ETSI TS 103 120 schema set.

Usage: python3 tests/etsi/validate.py FILE.xml [FILE.xml ...]

Prints `ok <file>` or `FAIL <file>: <reason>` per file; exits 0 only if every
file is valid (1 if any is invalid, 2 on usage or schema-loading errors).

Schema composition (see SOURCES.md): the current TS 103 120 XSDs in
`schema/`, completed with the V1.12.1 XSDs that have no current XSD here
(Authorisation, Document, Notification, TrafficPolicy, Dictionaries, in
`schema/v1.12.1/`) and the TS 103 280 v2.6.1 common types
(`schema/TS_103_280_01.xsd`). ETSI's XSDs import namespaces without a
schemaLocation, so an in-memory importer schema maps every namespace to its
local file explicitly. XML-DSig (`ds:Signature`, referenced from Core) comes
from the copy shipped inside the xmlschema package. No network access is
allowed: resources are restricted to local files, and xsi:schemaLocation
hints in instance documents are ignored.

Requires the `xmlschema` package (pinned by tests/api/etsi_schema.rs).
"""

import pathlib
import sys
from xml.sax.saxutils import quoteattr

import xmlschema

HERE = pathlib.Path(__file__).resolve().parent
SCHEMA = HERE / "schema"
OLD = SCHEMA / "v1.12.1"
DSIG = pathlib.Path(xmlschema.__file__).resolve().parent / "schemas" / "DSIG" / "xmldsig-core-schema.xsd"

# namespace -> schema file. One file per namespace; the current version wins
# wherever one exists.
NAMESPACES = {
    "http://uri.etsi.org/03120/common/2019/10/Core": SCHEMA / "ts_103120_Core.xsd",
    "http://uri.etsi.org/03120/common/2016/02/Common": SCHEMA / "ts_103120_Common.xsd",
    "http://uri.etsi.org/03120/common/2024/06/Config": SCHEMA / "ts_103120_Config.xsd",
    "http://uri.etsi.org/03120/common/2019/10/Delivery": SCHEMA / "ts_103120_Delivery.xsd",
    "http://uri.etsi.org/03120/common/2026/07/Destination": SCHEMA / "ts_103120_Destination.xsd",
    "http://uri.etsi.org/03120/common/2026/01/Encryption": SCHEMA / "ts_103120_Encryption.xsd",
    "http://uri.etsi.org/03120/common/2026/01/IRIPolicy": SCHEMA / "ts_103120_IRIPolicy.xsd",
    "http://uri.etsi.org/03120/common/2020/09/Task": SCHEMA / "ts_103120_Task.xsd",
    "http://uri.etsi.org/03120/common/2020/09/Authorisation": OLD / "ts_103120_Authorisation.xsd",
    "http://uri.etsi.org/03120/common/2020/09/Document": OLD / "ts_103120_Document.xsd",
    "http://uri.etsi.org/03120/common/2016/02/Notification": OLD / "ts_103120_Notification.xsd",
    "http://uri.etsi.org/03120/common/2022/07/TrafficPolicy": OLD / "ts_103120_TrafficPolicy.xsd",
    "http://uri.etsi.org/03280/common/2019/10/Dictionaries": OLD / "ts_103120_Dictionaries.xsd",
    "http://uri.etsi.org/03280/common/2017/07": SCHEMA / "TS_103_280_01.xsd",
    "http://www.w3.org/2000/09/xmldsig#": DSIG,
}


def build_schema():
    for path in NAMESPACES.values():
        if not path.is_file():
            raise FileNotFoundError(f"schema file missing: {path}")
    imports = "\n".join(
        f"  <xs:import namespace={quoteattr(ns)} schemaLocation={quoteattr(path.as_uri())}/>"
        for ns, path in NAMESPACES.items()
    )
    importer = (
        '<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema">\n'
        f"{imports}\n"
        "</xs:schema>\n"
    )
    locations = [(ns, path.as_uri()) for ns, path in NAMESPACES.items()]
    return xmlschema.XMLSchema10(
        importer,
        base_url=SCHEMA.as_uri(),
        locations=locations,
        use_fallback=False,
        allow="local",
    )


def first_line(text):
    return " ".join(str(text).split())


def describe(error):
    path = getattr(error, "path", None) or "/"
    reason = getattr(error, "reason", None) or first_line(error)
    return f"at {path}: {first_line(reason)}"


def main(argv):
    if not argv:
        print("usage: validate.py FILE.xml [FILE.xml ...]", file=sys.stderr)
        return 2
    try:
        schema = build_schema()
    except Exception as exc:  # schema set broken: not a per-file verdict
        print(f"ERROR loading ETSI schema set: {first_line(exc)}", file=sys.stderr)
        return 2

    failed = 0
    for name in argv:
        try:
            resource = xmlschema.XMLResource(name, allow="local")
            root = resource.root.tag
            if schema.maps.elements.get(root) is None:
                raise ValueError(f"root element {root} is not declared by the ETSI schema set")
            errors = list(schema.iter_errors(resource, use_location_hints=False))
        except Exception as exc:
            print(f"FAIL {name}: {first_line(exc)}")
            failed += 1
            continue
        if errors:
            print(f"FAIL {name}: {describe(errors[0])}" + (f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""))
            for extra in errors[1:5]:
                print(f"    {describe(extra)}")
            failed += 1
        else:
            print(f"ok {name}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
