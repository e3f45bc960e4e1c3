"""kbang_egov: rank districts' e-government self-assessments (Chính quyền điện tử cấp huyện)."""

__version__ = "0.1.0"
