"""What humans see and do: the review page, outcomes of the tool's decisions, fixture export."""
