"""The edge controller: decides a chute for every parcel before its deadline."""
