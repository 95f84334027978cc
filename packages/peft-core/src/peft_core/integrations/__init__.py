"""Integrations with other libraries, each imported explicitly (never by `import peft_core`)."""
