from njord.cli import main

main()
