"""A Gato-style generalist (Reed et al. 2022): one decoder-only transformer over tokenised examples of several
of the suite's tasks (jet tagging, a particle simulator's next step, radar nowcasting), scored per task against
the specialist of the same size trained on that task alone and against the task's physics baseline."""
