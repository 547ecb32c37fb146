from django.apps import AppConfig


class PackagesConfig(AppConfig):
    """Count cards, combo packages and time cards (计次卡/套餐/时间卡)."""

    name = "meiye.packages"
    label = "packages"
    verbose_name = "Packages"
