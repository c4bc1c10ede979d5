"""Recording demonstrations in Motus's fine-tuning format; owns the shared data schema."""
