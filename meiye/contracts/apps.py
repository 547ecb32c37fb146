from django.apps import AppConfig


class ContractsConfig(AppConfig):
    """Prepaid contracts (预付式消费合同): one per stored-value or package sale, signed by the member."""

    name = "meiye.contracts"
    label = "contracts"
    verbose_name = "Prepaid contracts"
