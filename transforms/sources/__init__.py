"""Where samples come from: PDF pages and figures (pdf/), web pages (web/), notebooks (notebooks/), SFT conversations (sft), text corpora (text), and the Beam stages of record files (records)."""
