"""LLM proxying shared by the AI plugins: config records, request normalization, provider
drivers, target balancing, SSE parsing and usage accounting (Kong's `kong/llm`)."""
