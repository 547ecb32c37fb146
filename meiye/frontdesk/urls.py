from django.urls import path
from django.views.generic import TemplateView

app_name = "frontdesk"
urlpatterns = [
    path("", TemplateView.as_view(template_name="frontdesk/home.html"), name="home"),
    path("login/", TemplateView.as_view(template_name="frontdesk/home.html"), name="login"),
    path("2fa/setup/", TemplateView.as_view(template_name="frontdesk/home.html"), name="2fa_setup"),
    path("2fa/verify/", TemplateView.as_view(template_name="frontdesk/home.html"), name="2fa_verify"),
]
