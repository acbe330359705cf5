"""A task Kie's moderation refused: the prompt (or an input) has to change. Read by the
tracker (such a failure is final) and by the planner (the rerun and --retry-failed send
nothing until the job is edited; status and the gallery say "edit the prompt")."""

from __future__ import annotations

from pipeline.state.store import Attempt

MODERATION_WORDS = ("prohibited", "moderation", "content policy", "sensitive", "violat")
EDIT_THE_PROMPT = (
    "refused by moderation: edit the prompt (the same prompt is refused again, so "
    "--retry-failed does not resend it)"
)


def is_moderation(code: str | None, message: str | None) -> bool:
    """A refusal of the content: retrying the same input cannot help."""
    text = (message or "").lower()
    return code == "422" or any(word in text for word in MODERATION_WORDS)


def moderated(attempt: Attempt) -> bool:
    """The attempt's task was made and then refused for its content (a create refused for
    an invalid input is no task, and no moderation)."""
    return (
        attempt.permanent
        and attempt.task_id is not None
        and is_moderation(attempt.error_code, attempt.error_message)
    )
