# Prints Cargo.toml without the targets the image does not build: every [[bench]],
# [[test]] and [[example]], and every [[bin]] other than lms-realtime (e.g. the load
# generator). Their source files are not in the image's build context, and cargo
# refuses a manifest whose targets it cannot find. Dependencies are untouched, so
# Cargo.lock still matches.
#   awk -f deploy/docker/strip-manifest.awk Cargo.toml
function flush() {
    if (inbin && keep) printf "%s", buf
    buf = ""; inbin = 0; keep = 0
}
/^\[/ { flush(); skip = 0 }
/^\[\[(bench|test|example)\]\]/ { skip = 1; next }
/^\[\[bin\]\]/ { inbin = 1; buf = $0 "\n"; next }
inbin {
    buf = buf $0 "\n"
    if ($0 ~ /^name[ \t]*=[ \t]*"lms-realtime"/) keep = 1
    next
}
!skip { print }
END { flush() }
