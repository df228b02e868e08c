"""Reading hostile text: the views of a comment that rules, prompts and screens share."""
