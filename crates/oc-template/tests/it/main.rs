//! Integration tests of oc-template, one binary: the examples of `docs/template.md`, the Java 17 reference
//! vectors (`tests/data/java-vectors.tsv`), and the round-trip and no-panic properties.

mod doc_examples;
mod java_vectors;
mod props;
