from pactbond.cli import main

main()
