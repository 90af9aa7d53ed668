# Flattens one JSON document (stdin) into lines "PATH<TAB>VALUE", one for each scalar.
# Object keys and array indexes are joined with dots:
#   {"links":[{"id":"tap1","mtu":1450}]}  ->  "links.0.id<TAB>tap1" and "links.0.mtu<TAB>1450"
# The guest has no jq; this reads Nova's meta_data.json and network_data.json whatever the key order
# or layout. Strings are unescaped (a \uXXXX beyond ASCII becomes "?", a newline a space); numbers,
# true, false and null are printed as written. It is a reader for well-formed input, not a validator.

{ doc = doc $0 "\n" }

END {
    n = length(doc)
    p = 1
    hex = "0123456789abcdef"
    value("")
}

function skip_ws() {
    while (p <= n && index(" \t\r\n", substr(doc, p, 1)) > 0)
        p++
}

function child(path, key) {
    return path == "" ? key : path "." key
}

function emit(path, v) {
    gsub(/\n/, " ", v)
    print path "\t" v
}

function value(path,    c) {
    skip_ws()
    c = substr(doc, p, 1)
    if (c == "{")
        object(path)
    else if (c == "[")
        array(path)
    else if (c == "\"")
        emit(path, string())
    else
        scalar(path)
}

function object(path,    key, c) {
    p++                                   # "{"
    skip_ws()
    if (substr(doc, p, 1) == "}") { p++; return }
    while (p <= n) {
        skip_ws()
        key = string()
        skip_ws()
        p++                               # ":"
        value(child(path, key))
        skip_ws()
        c = substr(doc, p, 1)
        p++                               # "," or "}"
        if (c != ",")
            return
    }
}

function array(path,    i, c) {
    p++                                   # "["
    skip_ws()
    if (substr(doc, p, 1) == "]") { p++; return }
    for (i = 0; p <= n; i++) {
        value(child(path, i))
        skip_ws()
        c = substr(doc, p, 1)
        p++                               # "," or "]"
        if (c != ",")
            return
    }
}

function scalar(path,    start) {
    start = p
    while (p <= n && index(",}] \t\r\n", substr(doc, p, 1)) == 0)
        p++
    emit(path, substr(doc, start, p - start))
}

# Reads the string that starts at p (on its opening quote) and returns it unescaped.
function string(    out, c, e, code, k) {
    p++
    out = ""
    while (p <= n) {
        c = substr(doc, p, 1)
        if (c == "\"") { p++; return out }
        if (c != "\\") { out = out c; p++; continue }
        e = substr(doc, p + 1, 1)
        p += 2
        if (e == "n") out = out "\n"
        else if (e == "t") out = out "\t"
        else if (e == "r") out = out "\r"
        else if (e == "b" || e == "f") out = out " "
        else if (e == "u") {
            code = 0
            for (k = 0; k < 4; k++)
                code = code * 16 + index(hex, tolower(substr(doc, p + k, 1))) - 1
            p += 4
            out = out (code >= 32 && code < 127 ? sprintf("%c", code) : "?")
        } else out = out e               # \" \\ \/
    }
    return out
}
