"""Link: every accepted row of every source assigned to a person, with the reason why."""
