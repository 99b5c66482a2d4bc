"""Scanner benchmarks: a seeded corpus generator, quality (P/R/F1 per type), speed with peers, CLUENER F1."""
