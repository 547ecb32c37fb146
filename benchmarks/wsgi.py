import os

from django.core.wsgi import get_wsgi_application

from meiye.core.gc_tuning import tune_for_web

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.settings")
application = get_wsgi_application()
tune_for_web()  # as config/wsgi.py: the benchmark serves the app as production does
