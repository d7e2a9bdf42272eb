"""One module per model: its label definition, baselines, training and evaluation."""

MODEL_NAMES = ("dropout", "final_score", "topic_mastery", "next_chapter", "quiz_difficulty")
