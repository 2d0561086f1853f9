print("edgesim")
