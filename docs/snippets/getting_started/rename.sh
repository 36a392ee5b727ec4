# GET: answers { hello } and sets the CSRF cookie; the POST sends it back with its header.
curl -s -c cookies.txt "http://127.0.0.1:8000/graphql?query=%7Bhello%7D"
curl -s -b cookies.txt -H "X-CSRFToken: $(awk '/csrftoken/ {print $7}' cookies.txt)" \
  -H "Content-Type: application/json" \
  -d '{"query": "mutation { renameProduct(id: 1, name: \"Green tea\") }"}' \
  http://127.0.0.1:8000/graphql
