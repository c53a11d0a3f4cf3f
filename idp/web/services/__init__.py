"""All services: the exam-board services the signed-in person can start."""
