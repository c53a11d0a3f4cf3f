"""The centre console: Exams Officers and admins manage their centre's people (board staff any
centre's): the list, invites, a person's page and what can be done to them, the centre's activity."""
