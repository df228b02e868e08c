"""The comments the benchmarks moderate: distinct texts of realistic length, so that text
hashes and prompts differ from one comment to the next."""

PHRASES = (
    "Thanks for writing this up, the part about connection pools saved my afternoon.",
    "I disagree with the second point, but the benchmark numbers are convincing.",
    "Could you share the config you used for the replica? Mine keeps lagging.",
    "Great post. Bookmarked for the next time our cron jobs pile up at midnight.",
    "This is the clearest explanation of keyset pagination I have read so far.",
)


def body(i: int) -> str:
    return f"#{i} {PHRASES[i % len(PHRASES)]} (reply {i * 7919 % 10007})"
