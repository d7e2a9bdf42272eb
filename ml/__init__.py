"""Models for the LMS platform: dropout risk, final score, topic mastery (weak topics), next
chapter and quiz difficulty, trained on the dbt feature marts and kept in a registry on S3.

Plain library code: `flows/` orchestrates it, `serving/` loads its models through `ml.registry`.
"""
