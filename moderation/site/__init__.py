"""The site's own comments: its table (reflected, never altered), status values, presets."""
