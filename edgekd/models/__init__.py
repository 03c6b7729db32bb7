"""Student (timm encoder + light decoder) and frozen teachers."""

from .student import EncoderDecoder, create_student, student_from_checkpoint
from .teacher import FrozenTeacher, create_teacher

__all__ = ["EncoderDecoder", "create_student", "student_from_checkpoint", "FrozenTeacher", "create_teacher"]
