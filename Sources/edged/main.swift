print("edged")
