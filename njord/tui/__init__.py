"""The Textual app: watches any session db read-only and steers it through controls."""
