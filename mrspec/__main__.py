from mrspec.cli import main

main()
