python manage.py makemigrations shop
python manage.py migrate
python manage.py shell -c "from shop.models import Product; Product.objects.create(name='Tea')"
