//! Tests of the CEQL parser, printer and evaluation.
