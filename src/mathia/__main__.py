from mathia.cli import main

main()
